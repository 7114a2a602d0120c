/*
 * integrations/libext2fs/io_edges.c: ctest ext2/io_edges — the io_manager's
 * edge cases, driven through the io_channel interface directly and checked
 * against unix_io_manager on the same file.
 *
 * 1. Objects: one 1 MiB + 512 byte image file (not a multiple of 1 KiB, so the
 *    last 512 bytes are past the cache's end), one slabdefrag channel.
 * 2. Checks: set_blksize 1024 -> 4096 (reopen) keeps data; byte-granular
 *    writes (negative counts, write_byte) at odd offsets; a read across the end
 *    is zero-filled and returns EXT2_ET_SHORT_READ through read_error; a write
 *    across the end returns EXT2_ET_SHORT_WRITE through write_error; zeroout;
 *    discard (0 or EXT2_ET_UNIMPLEMENTED); set_option memory_limit (valid, too
 *    small, unknown option); get_stats; a read-only channel refuses writes; and
 *    after close, unix_io reads exactly what was written.
 * 3. Error policy: each failed check prints a line; exit 1 if any failed.
 */
#define _GNU_SOURCE
#include <slabdefrag/ext2fs_io.h>

#include <ext2fs/ext2fs.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int fails;
#define CHECK(cond, ...)                                                                   \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fails++;                                                                       \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                            \
            fprintf(stderr, __VA_ARGS__);                                                  \
            fprintf(stderr, "\n");                                                         \
        }                                                                                  \
    } while (0)

static int read_errors, write_errors;
static errcode_t on_read_error(io_channel ch, unsigned long block, int count, void *data,
                               size_t size, int actual, errcode_t error)
{
    (void)ch, (void)block, (void)count, (void)data, (void)size, (void)actual;
    read_errors++;
    return error;
}
static errcode_t on_write_error(io_channel ch, unsigned long block, int count,
                                const void *data, size_t size, int actual, errcode_t error)
{
    (void)ch, (void)block, (void)count, (void)data, (void)size, (void)actual;
    write_errors++;
    return error;
}

#define SIZE ((1u << 20) + 512u)

int main(void)
{
    char path[] = "/tmp/io_edges.XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0 || ftruncate(fd, SIZE) < 0)
        return perror("mkstemp"), 1;
    close(fd);
    initialize_ext2_error_table();
    static unsigned char model[SIZE], buf[8192];
    io_channel ch;
    errcode_t e = slabdefrag_io_manager->open(path, IO_FLAG_RW, &ch);
    CHECK(!e, "open: %ld", (long)e);
    if (e)
        return 1;
    ch->read_error = on_read_error;
    ch->write_error = on_write_error;
    CHECK(ch->block_size == 1024, "initial block size %d", ch->block_size);
    CHECK(io_channel_set_options(ch, "memory_limit=128K") == 0, "memory_limit=128K");
    CHECK(io_channel_set_options(ch, "memory_limit=1000") != 0, "memory_limit too small");
    CHECK(io_channel_set_options(ch, "bogus=1") != 0, "unknown option accepted");

    /* 1 KiB blocks, then byte-granular writes, then 4 KiB blocks. */
    for (unsigned i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)(i * 7 + 1);
    CHECK(io_channel_write_blk64(ch, 3, 2, buf) == 0, "write 1K blocks 3..4");
    memcpy(model + 3072, buf, 2048);
    CHECK(io_channel_write_blk64(ch, 5, -100, buf + 77) == 0, "write -100 bytes at 5K");
    memcpy(model + 5120, buf + 77, 100);
    CHECK(io_channel_write_byte(ch, 1000003, 321, buf + 5) == 0, "write_byte");
    memcpy(model + 1000003, buf + 5, 321);
    CHECK(io_channel_set_blksize(ch, 4096) == 0 && ch->block_size == 4096, "set_blksize 4096");
    CHECK(io_channel_read_blk64(ch, 0, 2, buf) == 0 && !memcmp(buf, model, 8192),
          "data survives the reopen at 4 KiB");
    memset(buf, 0xab, 4096);
    CHECK(io_channel_write_blk64(ch, 10, 1, buf) == 0, "write 4K block 10");
    memcpy(model + 40960, buf, 4096);
    CHECK(io_channel_write_blk64(ch, 11, -3, "xyz") == 0, "write -3 bytes at block 11");
    memcpy(model + 45056, "xyz", 3);
    CHECK(io_channel_zeroout(ch, 10, 1) == 0, "zeroout block 10");
    memset(model + 40960, 0, 4096);
    e = io_channel_discard(ch, 100, 2);
    CHECK(e == 0 || e == EXT2_ET_UNIMPLEMENTED, "discard: %ld", (long)e);
    memset(model + 100 * 4096, 0, 8192); /* the image was all zeroes there anyway */

    /* Across the end: the last full 4K block is 255; block 256 is 512 bytes of
     * the file that the 1 KiB-granular cache cannot hold. */
    CHECK(io_channel_read_blk64(ch, 255, 1, buf) == 0, "read the last block");
    memset(buf, 0x55, 8192);
    e = io_channel_read_blk64(ch, 255, 2, buf);
    CHECK(e == EXT2_ET_SHORT_READ && read_errors == 1, "short read: %ld, handler %d",
          (long)e, read_errors);
    int zero = 1;
    for (unsigned i = 4096; i < 8192; i++)
        zero &= buf[i] == 0;
    CHECK(zero, "short read zero-fills the tail");
    e = io_channel_write_blk64(ch, 255, 2, buf);
    CHECK(e == EXT2_ET_SHORT_WRITE && write_errors == 1, "short write: %ld, handler %d",
          (long)e, write_errors);
    memcpy(model + 255 * 4096, buf, 4096); /* the in-range part was written */

    io_stats st = NULL;
    CHECK(ch->manager->get_stats(ch, &st) == 0 && st && st->bytes_written > 0 &&
              st->bytes_read > 0, "get_stats");
    CHECK(io_channel_flush(ch) == 0, "flush");
    CHECK(io_channel_close(ch) == 0, "close");

    /* Read-only channel: reads work, writes fail. */
    CHECK(slabdefrag_io_manager->open(path, 0, &ch) == 0, "open read-only");
    CHECK(io_channel_read_blk64(ch, 3, 1, buf) == 0 && !memcmp(buf, model + 3072, 1024),
          "read-only read");
    CHECK(io_channel_write_blk64(ch, 3, 1, buf) != 0, "read-only write refused");
    CHECK(io_channel_close(ch) == 0, "close read-only");

    /* unix_io is the judge. */
    CHECK(unix_io_manager->open(path, 0, &ch) == 0, "unix_io open");
    static unsigned char got[SIZE];
    CHECK(io_channel_read_blk64(ch, 0, -(int)(SIZE - 512), got) == 0, "unix_io read");
    for (unsigned i = 0; i < SIZE - 512; i++)
        if (got[i] != model[i]) {
            CHECK(0, "byte %u: unix_io reads %u, wrote %u", i, got[i], model[i]);
            break;
        }
    io_channel_close(ch);
    unlink(path);
    printf("io_edges: %s\n", fails ? "FAILED" : "ok");
    return fails ? 1 : 0;
}
