# bench/defrag.cmake — the defragmentation benchmark (included by
# bench/CMakeLists.txt when present).  One source, defrag_bench.c, through the
# allocator benchmark's seam (alloc_backend.c), one executable per allocator:
#   bench_defrag            slabdefrag (move callback + slab_cache_shrink / the
#                           background defragmenter)
#   bench_defrag_glibc      malloc_trim(0)
#   bench_defrag_jemalloc   mallctl("arena.<all>.purge")
#   bench_defrag_mimalloc   mi_collect(true)
#   bench_defrag_tcmalloc   MallocExtension_ReleaseFreeMemory()
# bench/defrag_run.sh runs them all and prints the table.
set(DEFRAG_BENCH_SOURCES
  ${CMAKE_CURRENT_SOURCE_DIR}/defrag_bench.c
  ${CMAKE_CURRENT_SOURCE_DIR}/alloc_backend.c)

function(add_defrag_bench exe alloc)
  add_executable(${exe} ${DEFRAG_BENCH_SOURCES})
  string(TOUPPER ${alloc} upper)
  target_compile_definitions(${exe} PRIVATE BENCH_ALLOC_${upper}=1)
  target_link_libraries(${exe} PRIVATE ${ARGN} Threads::Threads ${CMAKE_DL_LIBS})
endfunction()

add_defrag_bench(bench_defrag slabdefrag slabdefrag_static)
add_defrag_bench(bench_defrag_glibc glibc)
foreach(peer JEMALLOC MIMALLOC TCMALLOC)
  string(TOLOWER ${peer} name)
  if(NOT DEFINED ${peer}_LIBRARY)
    message(STATUS "bench/defrag.cmake: ${peer}_LIBRARY not set by bench/CMakeLists.txt")
  endif()
  if(${peer}_INCLUDE_DIR AND ${peer}_LIBRARY)
    add_defrag_bench(bench_defrag_${name} ${name} ${${peer}_LIBRARY})
    target_include_directories(bench_defrag_${name} PRIVATE ${${peer}_INCLUDE_DIR})
  endif()
endforeach()
