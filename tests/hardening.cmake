# Hardening suites (included at the end of tests/CMakeLists.txt):
#  - the fuzz targets of tests/fuzz/, replayed in every build through a
#    standalone driver over their seed corpora (generated from the golden
#    fixtures) and every crash regression kept in tests/fuzz/regressions/;
#    with clang and -DTOWERRT_FUZZ=ON also built as libFuzzer binaries
#    (tools/run_hardening.sh runs them);
#  - no heap allocation on the scoring path (test_no_alloc);
#  - sessions on many threads give bitwise the single-thread scores
#    (test_concurrency, label `threads`: run under TSan by run_hardening.sh);
#  - resource limits on file and request values (tests/fuzz/test_limits.c).
option(TOWERRT_FUZZ "Build the libFuzzer targets of tests/fuzz (needs clang)" OFF)

set(TOWERRT_FUZZ_TARGETS fuzz_model_load fuzz_items_load fuzz_requests fuzz_score_api)
set(towerrt_fuzz_src ${CMAKE_CURRENT_SOURCE_DIR}/fuzz)
set(towerrt_fuzz_fixtures TOWERRT_FUZZ_FIXTURES="${CMAKE_CURRENT_SOURCE_DIR}/fixtures/golden")
set(towerrt_fuzz_seeds ${CMAKE_CURRENT_BINARY_DIR}/fuzz_seeds)

# ---- seed corpora, generated from the fixtures ---------------------------------
add_executable(fuzz_make_seeds ${towerrt_fuzz_src}/make_seeds.c ${towerrt_fuzz_src}/fuzz_common.c)
target_link_libraries(fuzz_make_seeds PRIVATE towerrt_internal)
target_compile_options(fuzz_make_seeds PRIVATE ${TOWERRT_WARNINGS})
target_compile_definitions(fuzz_make_seeds PRIVATE ${towerrt_fuzz_fixtures})
towerrt_runner(fuzz_make_seeds fuzz_make_seeds_run)
add_test(NAME fuzz_seeds COMMAND ${CMAKE_COMMAND} -DGEN=${fuzz_make_seeds_run} -DOUT=${towerrt_fuzz_seeds}
         -P ${towerrt_fuzz_src}/make_seeds.cmake)
set_tests_properties(fuzz_seeds PROPERTIES FIXTURES_SETUP towerrt_fuzz_seeds LABELS fuzz)

# ---- every fuzz target, replayed without libFuzzer ------------------------------
foreach(t ${TOWERRT_FUZZ_TARGETS})
  add_executable(${t}_replay ${towerrt_fuzz_src}/${t}.c ${towerrt_fuzz_src}/fuzz_common.c ${towerrt_fuzz_src}/replay_main.c)
  target_link_libraries(${t}_replay PRIVATE towerrt_internal)
  target_compile_options(${t}_replay PRIVATE ${TOWERRT_WARNINGS})
  target_compile_definitions(${t}_replay PRIVATE ${towerrt_fuzz_fixtures})
  add_test(NAME fuzz_replay_${t}
           COMMAND ${t}_replay ${towerrt_fuzz_seeds}/${t} --allow-missing ${towerrt_fuzz_src}/seeds/${t}
                   ${towerrt_fuzz_src}/regressions/${t})
  set_tests_properties(fuzz_replay_${t} PROPERTIES FIXTURES_REQUIRED towerrt_fuzz_seeds LABELS fuzz)
endforeach()

# ---- resource limits driven by file and request values --------------------------
add_executable(test_limits ${towerrt_fuzz_src}/test_limits.c test_util.c)
target_link_libraries(test_limits PRIVATE towerrt_internal)
target_include_directories(test_limits PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_compile_options(test_limits PRIVATE ${TOWERRT_WARNINGS})
add_test(NAME limits COMMAND test_limits ${golden_first})

# ---- no allocation while scoring ------------------------------------------------
# Counts every malloc/calloc/realloc/aligned_alloc/posix_memalign/memalign/
# free. Plain builds interpose the symbols (libc's own calls are counted
# too); sanitizer builds own malloc, so there the test wraps the calls the
# runtime makes (-Wl,--wrap).
towerrt_test(test_no_alloc)
target_compile_options(test_no_alloc PRIVATE -fno-builtin)
if(TOWERRT_SANITIZE)
  target_compile_definitions(test_no_alloc PRIVATE TRT_NOALLOC_WRAP=1)
  target_link_options(test_no_alloc PRIVATE
    "LINKER:--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=free,--wrap=aligned_alloc,--wrap=posix_memalign,--wrap=memalign")
endif()
add_test(NAME no_alloc COMMAND test_no_alloc ${TOWERRT_GOLDEN_DIRS})

# ---- many sessions on many threads ----------------------------------------------
towerrt_test(test_concurrency)
add_test(NAME concurrency COMMAND test_concurrency ${TOWERRT_GOLDEN_DIRS})
set_tests_properties(concurrency PROPERTIES LABELS threads)

# Item stores swapped live under scoring threads (towerrt_session_set_items).
towerrt_test(test_swap)
add_test(NAME swap COMMAND test_swap ${golden_first} ${golden_second})
set_tests_properties(swap PROPERTIES LABELS threads TIMEOUT 60)

# ---- libFuzzer binaries (clang) -------------------------------------------------
if(TOWERRT_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "TOWERRT_FUZZ=ON needs clang (libFuzzer); configure a separate build with CC=clang")
  endif()
  if(TOWERRT_SANITIZE MATCHES "thread|memory")
    message(FATAL_ERROR "TOWERRT_FUZZ=ON builds with ASan + UBSan; leave TOWERRT_SANITIZE empty or address,undefined")
  endif()
  set(fuzz_flags -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g)
  # The runtime and kernel sources again, instrumented for coverage; each
  # kernel file keeps the ISA flags kernels.cmake gave it at the top level.
  set(fuzz_lib_src "")
  foreach(src ${TOWERRT_RUNTIME_SOURCES} ${TOWERRT_KERNEL_SOURCES})
    get_filename_component(abs ${src} ABSOLUTE BASE_DIR ${PROJECT_SOURCE_DIR})
    foreach(prop COMPILE_OPTIONS COMPILE_FLAGS COMPILE_DEFINITIONS INCLUDE_DIRECTORIES)
      get_source_file_property(v ${abs} DIRECTORY ${PROJECT_SOURCE_DIR} ${prop})
      if(v)
        set_source_files_properties(${abs} PROPERTIES ${prop} "${v}")
      endif()
    endforeach()
    list(APPEND fuzz_lib_src ${abs})
  endforeach()
  # The text readers (tools/text_input.c, not in libtowerrt) are fuzzed too.
  list(APPEND fuzz_lib_src ${PROJECT_SOURCE_DIR}/tools/text_input.c)
  add_library(towerrt_fuzzlib STATIC ${fuzz_lib_src})
  target_include_directories(towerrt_fuzzlib PUBLIC ${PROJECT_SOURCE_DIR} ${PROJECT_SOURCE_DIR}/include)
  target_compile_definitions(towerrt_fuzzlib PRIVATE $<TARGET_PROPERTY:towerrt_objects,COMPILE_DEFINITIONS>)
  target_compile_options(towerrt_fuzzlib PRIVATE ${TOWERRT_WARNINGS} ${fuzz_flags})
  get_target_property(towerrt_libs towerrt_static LINK_LIBRARIES)
  target_link_libraries(towerrt_fuzzlib PUBLIC ${towerrt_libs})
  foreach(t ${TOWERRT_FUZZ_TARGETS})
    add_executable(${t} ${towerrt_fuzz_src}/${t}.c ${towerrt_fuzz_src}/fuzz_common.c)
    target_link_libraries(${t} PRIVATE towerrt_fuzzlib)
    target_compile_options(${t} PRIVATE ${TOWERRT_WARNINGS} ${fuzz_flags})
    target_compile_definitions(${t} PRIVATE ${towerrt_fuzz_fixtures})
    target_link_options(${t} PRIVATE -fsanitize=fuzzer,address,undefined)
  endforeach()
  add_custom_target(fuzzers DEPENDS ${TOWERRT_FUZZ_TARGETS} fuzz_make_seeds)
endif()
