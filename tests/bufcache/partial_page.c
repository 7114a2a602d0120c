/*
 * bufcache/partial_page: an image whose size is not a multiple of 4 KiB.
 *
 * A 21 KiB + 512 B image (5 full pages, then 1.5 KiB: its last page is only
 * partly backed by the file).  For each block size: the device holds
 * size / block_size whole blocks (a trailing partial block is not addressable);
 * the last block can be read and written, and writing it neither extends the
 * file nor touches bytes past it; the first block past the end is EINVAL even
 * though it lies inside a cached page.
 */
#include "bctest.h"

#define SIZE (21u * 1024 + 512)

int main(void)
{
    static const unsigned sizes[] = {512, 1024, 2048, 4096};
    for (int i = 0; i < 4; i++) {
        unsigned bs = sizes[i];
        char path[256];
        image_create(path, SIZE, 0x9a9);
        struct bcache *bc = xbcache(0, 0, 0);
        struct bdev *dev = xopen(bc, path, bs, O_RDWR);
        uint64_t n = SIZE / bs;
        struct buffer_head *bh = bh_read(dev, n - 1);
        CHECK(bh, "bs %u: last block %llu: %s", bs, (unsigned long long)(n - 1), strerror(errno));
        const unsigned char *d = bh->b_data;
        for (unsigned k = 0; k < bs; k++)
            CHECK(d[k] == pattern_byte(0x9a9, (n - 1) * bs + k), "bs %u: last block wrong", bs);
        bh_lock(bh);
        block_fill(bh->b_data, bs, n - 1, 5);
        bh_mark_dirty(bh);
        bh_unlock(bh);
        CHECK(bh_sync(bh) == 0, "bs %u: bh_sync of the last block: %s", bs, strerror(errno));
        bh_put(bh);
        errno = 0;
        CHECK(!bh_read(dev, n) && errno == EINVAL, "bs %u: block %llu past the end", bs,
              (unsigned long long)n);
        errno = 0;
        CHECK(!bh_get(dev, n) && errno == EINVAL, "bs %u: bh_get past the end", bs);
        CHECK(bdev_close(dev) == 0 && bcache_destroy(bc) == 0, "close/destroy");

        struct stat st;
        CHECK(stat(path, &st) == 0 && st.st_size == SIZE, "bs %u: the file size changed to %lld",
              bs, (long long)st.st_size);
        static unsigned char file[SIZE];
        image_read(path, 0, file, SIZE);
        CHECK(block_stamp_ok(file + (n - 1) * bs, bs, n - 1, NULL), "bs %u: write lost", bs);
        for (uint64_t k = n * bs; k < SIZE; k++)
            CHECK(file[k] == pattern_byte(0x9a9, k), "bs %u: byte %llu past the last block changed",
                  bs, (unsigned long long)k);
        for (uint64_t k = 0; k < (n - 1) * bs; k++)
            CHECK(file[k] == pattern_byte(0x9a9, k), "bs %u: byte %llu changed", bs,
                  (unsigned long long)k);
        image_remove(path);
    }
    printf("partial_page: ok\n");
    return 0;
}
