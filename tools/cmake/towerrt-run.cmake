# towerrt_runner(<target> <out-var>): the command that runs <target> from a
# test script (Python, cmake -P). Natively the binary itself; in a cross
# build with CMAKE_CROSSCOMPILING_EMULATOR (tools/cmake/aarch64-linux-gnu.cmake)
# a generated shell script, <build>/<target>-run, that starts it under the
# emulator, so the scripts need not know about qemu. (Tests that name the
# target in add_test get the emulator from ctest itself.)
function(towerrt_runner target out)
  if(CMAKE_CROSSCOMPILING AND CMAKE_CROSSCOMPILING_EMULATOR)
    set(script ${CMAKE_BINARY_DIR}/${target}-run)
    set(${out} ${script} PARENT_SCOPE)
    get_property(done GLOBAL PROPERTY towerrt_runner_${target})
    if(done)
      return()
    endif()
    set_property(GLOBAL PROPERTY towerrt_runner_${target} ON)
    string(REPLACE ";" "\" \"" emu "${CMAKE_CROSSCOMPILING_EMULATOR}")
    file(GENERATE OUTPUT ${script} CONTENT "#!/bin/sh\nexec \"${emu}\" \"$<TARGET_FILE:${target}>\" \"$@\"\n"
         FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
  else()
    set(${out} $<TARGET_FILE:${target}> PARENT_SCOPE)
  endif()
endfunction()
