/* python3 (PYTHONMALLOC=malloc, so every object goes through malloc) runs a
 * dict/list/str-heavy script with threads byte-identically under the front end
 * and under glibc.  Skips (77) only if python3 is not installed. */
#include "preload.h"

static const char script[] =
    "import json, threading, re, hashlib, collections\n"
    "def work(seed, out):\n"
    "    d = {}\n"
    "    for i in range(40000):\n"
    "        k = 'k%d' % ((i * 7919 + seed) % 50000)\n"
    "        d[k] = [i, str(i) * (i % 7), {'x': i % 13}]\n"
    "        if i % 3 == 0: d.pop('k%d' % (i // 2), None)\n"
    "    s = json.dumps(sorted(d.items())[:2000])\n"
    "    c = collections.Counter(re.findall(r'\\d{3}', s))\n"
    "    out[seed] = (len(d), hashlib.sha256(s.encode()).hexdigest(), c.most_common(3))\n"
    "out = {}\n"
    "ts = [threading.Thread(target=work, args=(s, out)) for s in range(4)]\n"
    "[t.start() for t in ts]; [t.join() for t in ts]\n"
    "for k in sorted(out): print(k, out[k])\n"
    "big = [bytearray(n % 70000) for n in range(0, 3000000, 9973)]\n"
    "print(sum(len(b) for b in big), len(' '.join(str(x) for x in range(100000))))\n";

int main(int argc, char **argv)
{
    CHECK(argc >= 2, "usage: python_identical LIBSLABDEFRAG_MALLOC_SO");
    skip_unless_installed("python3");
    char *cmd[] = { "python3", "-c", (char *)script, NULL };
    const char *env[] = { "PYTHONMALLOC=malloc", "PYTHONHASHSEED=0", NULL };
    return same_output(cmd, argv[1], env, NULL, 100);
}
