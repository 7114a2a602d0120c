# bench/bufcache.cmake: the buffer-cache benchmark (included from bench/CMakeLists.txt).
# One executable, bench_bufcache: bh_read hit/miss against pread, memcpy and a
# pointer chase; prints a table with the issue's targets marked met/missed.
add_executable(bench_bufcache ${CMAKE_CURRENT_SOURCE_DIR}/bufcache_bench.c)
target_link_libraries(bench_bufcache PRIVATE slabdefrag_static Threads::Threads)
