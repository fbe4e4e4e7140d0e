# oneDNN for batched tower work (item-store builds: runtime/onednn_matmul.c),
# plus the item-store merge and the `towerrt merge-items` command.
# Included by the top-level CMakeLists.txt once towerrt_objects,
# towerrt_shared, towerrt_static and (with TOWERRT_BUILD_TOOLS) towerrt exist.
#
#   -DTOWERRT_WITH_ONEDNN=ON|OFF   default ON when oneDNN 1.x/2.x is found
#   -DTOWERRT_DNNL_INCLUDE_DIR=... -DTOWERRT_DNNL_LIBRARY=...   a oneDNN elsewhere
#
# Without oneDNN everything still builds: builds use the internal kernels.
find_path(TOWERRT_DNNL_INCLUDE_DIR oneapi/dnnl/dnnl.h)
find_library(TOWERRT_DNNL_LIBRARY NAMES dnnl)

set(towerrt_dnnl_usable OFF)
set(towerrt_dnnl_why "oneDNN not found (Debian/Ubuntu: apt-get install libdnnl-dev)")
if(TOWERRT_DNNL_INCLUDE_DIR AND TOWERRT_DNNL_LIBRARY)
  file(STRINGS ${TOWERRT_DNNL_INCLUDE_DIR}/oneapi/dnnl/dnnl_version.h towerrt_dnnl_major REGEX "#define DNNL_VERSION_MAJOR")
  file(STRINGS ${TOWERRT_DNNL_INCLUDE_DIR}/oneapi/dnnl/dnnl_version.h towerrt_dnnl_minor REGEX "#define DNNL_VERSION_MINOR")
  string(REGEX MATCH "[0-9]+" towerrt_dnnl_major "${towerrt_dnnl_major}")
  string(REGEX MATCH "[0-9]+" towerrt_dnnl_minor "${towerrt_dnnl_minor}")
  set(TOWERRT_DNNL_VERSION "${towerrt_dnnl_major}.${towerrt_dnnl_minor}")
  # The wrapper uses the 1.x/2.x C API (dnnl_matmul_desc_init, output
  # scales); 3.x replaced both.
  if(towerrt_dnnl_major GREATER_EQUAL 3)
    set(towerrt_dnnl_why "oneDNN ${TOWERRT_DNNL_VERSION} found, but runtime/onednn_matmul.c speaks the 2.x C API")
  elseif(towerrt_dnnl_major EQUAL 1 AND towerrt_dnnl_minor LESS 6)
    set(towerrt_dnnl_why "oneDNN ${TOWERRT_DNNL_VERSION} found, but matmul post-ops need >= 1.6")
  else()
    set(towerrt_dnnl_usable ON)
  endif()
endif()
option(TOWERRT_WITH_ONEDNN "Item-store builds (batched item tower) through oneDNN matmul" ${towerrt_dnnl_usable})

# runtime/onednn_matmul.c and runtime/item_store_merge.c are in TOWERRT_RUNTIME_SOURCES
# (CMakeLists.txt), so every build of the runtime (fuzzers included) has them.
if(TOWERRT_WITH_ONEDNN)
  if(NOT towerrt_dnnl_usable)
    message(FATAL_ERROR "TOWERRT_WITH_ONEDNN=ON but ${towerrt_dnnl_why}; "
                        "set TOWERRT_DNNL_INCLUDE_DIR / TOWERRT_DNNL_LIBRARY or -DTOWERRT_WITH_ONEDNN=OFF")
  endif()
  target_compile_definitions(towerrt_objects PRIVATE TOWERRT_HAVE_ONEDNN=1)
  target_include_directories(towerrt_objects PRIVATE ${TOWERRT_DNNL_INCLUDE_DIR})
  target_link_libraries(towerrt_shared PRIVATE ${TOWERRT_DNNL_LIBRARY} ${CMAKE_DL_LIBS})
  # A static libtowerrt needs libdnnl at its consumers' link: this build's
  # file here, the installed package's own find_library there
  # (tools/cmake/towerrtConfig.cmake.in), never this machine's path.
  target_link_libraries(towerrt_static PUBLIC $<BUILD_INTERFACE:${TOWERRT_DNNL_LIBRARY}>
                        $<INSTALL_INTERFACE:towerrt::dnnl> ${CMAKE_DL_LIBS})
  set(TOWERRT_PC_LIBS_PRIVATE "-ldnnl -ldl")
  message(STATUS "towerrt: oneDNN ${TOWERRT_DNNL_VERSION}: ${TOWERRT_DNNL_LIBRARY} (item-store builds use oneDNN matmul)")
else()
  if(towerrt_dnnl_usable)
    set(towerrt_dnnl_why "TOWERRT_WITH_ONEDNN=OFF")
  endif()
  message(STATUS "towerrt: oneDNN: off (${towerrt_dnnl_why}); item-store builds use the internal kernels")
endif()

# tests/items_build.cmake runs only when this file was included.
set(TOWERRT_ITEMS_BUILD_CMAKE ON)
