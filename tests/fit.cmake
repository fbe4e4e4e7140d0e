# FIT (docs/family.md "FIT"): golden parity with the PyTorch reference
# (tools/reference/fit_ref.py, fixtures by tools/make_golden_fit.py) by
# features, under every kernel set this CPU runs (skipped where it lacks
# one). Included at the end of tests/CMakeLists.txt.
file(GLOB TOWERRT_FIT_MODELS ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/golden_fit/*/model.twr)
set(TOWERRT_FIT_DIRS "")
foreach(m ${TOWERRT_FIT_MODELS})
  get_filename_component(d ${m} DIRECTORY)
  list(APPEND TOWERRT_FIT_DIRS ${d})
endforeach()
list(SORT TOWERRT_FIT_DIRS)
if(NOT TOWERRT_FIT_DIRS)
  message(FATAL_ERROR "tests/fixtures/golden_fit holds no fixtures; run tools/make_golden_fit.py")
endif()

towerrt_test(test_fit)
add_test(NAME fit COMMAND test_fit ${TOWERRT_FIT_DIRS})
foreach(isa scalar ${towerrt_native_isas})
  add_test(NAME fit_${isa} COMMAND test_fit ${TOWERRT_FIT_DIRS})
  set_tests_properties(fit_${isa} PROPERTIES ENVIRONMENT TOWERRT_ISA=${isa} SKIP_RETURN_CODE 77)
endforeach()

if(Python3_Interpreter_FOUND)
  # Standard library only: tools/export_fit.py reproduces every model.twr byte for byte.
  add_test(NAME fit_fixtures COMMAND ${Python3_EXECUTABLE} ${CMAKE_SOURCE_DIR}/tools/make_golden_fit.py --verify)
  # The CLI's doors (info, score by features, build-items + score by id) against the same reference values.
  add_test(NAME fit_cli COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/python/test_fit_cli.py
           ${TOWERRT_CLI_RUN} ${CMAKE_CURRENT_BINARY_DIR}/fit_cli ${TOWERRT_FIT_DIRS})
endif()

# FIT's request path allocates nothing (test_no_alloc, tests/hardening.cmake).
add_test(NAME no_alloc_fit COMMAND test_no_alloc --fit ${TOWERRT_FIT_DIRS})
