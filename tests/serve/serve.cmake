# towerrt serve (tools/serve/) end to end on loopback, each test on its own
# ephemeral port: tests/serve/test_serve.py parts, the wrk load run with a
# live reload, and tritonclient from PyPI. Needs the Debian Python (for
# python3-prometheus-client), wrk and curl (tools/install_deps.sh).
if(TOWERRT_HAVE_SERVE AND TARGET towerrt)
  find_program(TOWERRT_SYSTEM_PYTHON python3 PATHS /usr/bin NO_DEFAULT_PATH)
  if(NOT TOWERRT_SYSTEM_PYTHON)
    set(TOWERRT_SYSTEM_PYTHON ${Python3_EXECUTABLE})
  endif()
  set(serve_work ${CMAKE_CURRENT_BINARY_DIR}/serve)
  towerrt_runner(towerrt serve_cli)  # under the emulator in a cross build (docs/arm.md)
  add_executable(test_serve_float ${CMAKE_CURRENT_SOURCE_DIR}/serve/test_serve_float.c ${CMAKE_SOURCE_DIR}/tools/serve/serve_float.c)
  target_include_directories(test_serve_float PRIVATE ${CMAKE_SOURCE_DIR}/tools/serve ${CMAKE_SOURCE_DIR}/include)
  target_compile_options(test_serve_float PRIVATE ${TOWERRT_WARNINGS})
  target_link_libraries(test_serve_float PRIVATE m)
  add_test(NAME serve_float COMMAND test_serve_float)
  set_tests_properties(serve_float PROPERTIES LABELS serve)
  foreach(part golden errors metrics reload drain)
    add_test(NAME serve_${part} COMMAND ${TOWERRT_SYSTEM_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/serve/test_serve.py
             ${serve_cli} ${serve_work} ${part})
    set_tests_properties(serve_${part} PROPERTIES LABELS serve TIMEOUT 300)
  endforeach()
  add_test(NAME serve_load COMMAND ${TOWERRT_SYSTEM_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/serve/test_load.py
           ${serve_cli} ${serve_work} 6)
  set_tests_properties(serve_load PROPERTIES LABELS serve TIMEOUT 300)
  # PyPI, like python_venv: not in sanitizer builds (the server's ASan run is serve_load and the parts above).
  if(NOT TOWERRT_SANITIZE)
    add_test(NAME serve_tritonclient COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/serve/run_tritonclient_test.sh
             ${serve_work}/tritonclient_venv ${serve_cli})
    set_tests_properties(serve_tritonclient PROPERTIES LABELS "serve;python" TIMEOUT 600)
  endif()
endif()
