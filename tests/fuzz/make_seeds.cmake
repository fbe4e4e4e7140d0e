# ctest step: regenerate the fuzz seed corpora from the current fixtures.
#   cmake -DGEN=<fuzz_make_seeds> -DOUT=<dir> -P make_seeds.cmake
file(REMOVE_RECURSE ${OUT})
execute_process(COMMAND ${GEN} ${OUT} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "fuzz_make_seeds failed (${rc})")
endif()
