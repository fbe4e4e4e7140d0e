# towerrt serve (tools/serve/): built into the towerrt CLI when
# libmicrohttpd and json-c are found (tools/install_deps.sh installs them).
# Its sources see only include/towerrt.h of the library: the target's
# include path is tools/serve/ plus towerrt_static's public include/.
pkg_check_modules(MHD IMPORTED_TARGET libmicrohttpd)
pkg_check_modules(JSONC IMPORTED_TARGET json-c)
# Not in TOWERRT_MINIMAL: its static CLI cannot link the shared
# libmicrohttpd (and its TLS dependencies) the imported target names.
if(MHD_FOUND AND JSONC_FOUND AND NOT TOWERRT_MINIMAL)
  add_library(towerrt_serve STATIC
    tools/serve/serve_main.c tools/serve/serve_http.c tools/serve/serve_protocol.c tools/serve/serve_repo.c
    tools/serve/serve_workers.c tools/serve/serve_metrics.c tools/serve/serve_log.c tools/serve/serve_buf.c tools/serve/serve_float.c)
  target_include_directories(towerrt_serve PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/tools/serve)
  # Messages and paths are cut to their buffers on purpose (snprintf).
  target_compile_options(towerrt_serve PRIVATE ${TOWERRT_WARNINGS} -Wno-format-truncation)
  target_link_libraries(towerrt_serve PUBLIC towerrt_static PkgConfig::MHD PkgConfig::JSONC Threads::Threads m)
  target_link_libraries(towerrt PRIVATE towerrt_serve)
  target_compile_definitions(towerrt PRIVATE TOWERRT_HAVE_SERVE=1)
  set(TOWERRT_HAVE_SERVE ON)
else()
  message(STATUS "towerrt serve: not built (needs libmicrohttpd-dev and libjson-c-dev; off in TOWERRT_MINIMAL)")
  set(TOWERRT_HAVE_SERVE OFF)
endif()
