# The two-tower family (DSSM, DAT; docs/family.md): golden parity with the
# PyTorch reference (tools/make_golden_family.py) by features, by item-store
# id and as logits, under every kernel set this CPU runs (skipped where it
# lacks one, as golden_${isa}). Included at the end of tests/CMakeLists.txt.
file(GLOB TOWERRT_FAMILY_MODELS ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/golden_family/*/model.twr)
set(TOWERRT_FAMILY_DIRS "")
foreach(m ${TOWERRT_FAMILY_MODELS})
  get_filename_component(d ${m} DIRECTORY)
  list(APPEND TOWERRT_FAMILY_DIRS ${d})
endforeach()
list(SORT TOWERRT_FAMILY_DIRS)
if(NOT TOWERRT_FAMILY_DIRS)
  message(FATAL_ERROR "tests/fixtures/golden_family holds no fixtures; run tools/make_golden_family.py")
endif()

towerrt_test(test_family)
add_test(NAME family COMMAND test_family ${TOWERRT_FAMILY_DIRS})
foreach(isa scalar ${towerrt_native_isas})
  add_test(NAME family_${isa} COMMAND test_family ${TOWERRT_FAMILY_DIRS})
  set_tests_properties(family_${isa} PROPERTIES ENVIRONMENT TOWERRT_ISA=${isa} SKIP_RETURN_CODE 77)
endforeach()

if(Python3_Interpreter_FOUND)
  # Standard library only: fixture hashes, and the exporter (tools/export_family.py)
  # reproduces every model.twr byte for byte.
  add_test(NAME family_fixtures COMMAND ${Python3_EXECUTABLE} ${CMAKE_SOURCE_DIR}/tools/make_golden_family.py --verify)
endif()
