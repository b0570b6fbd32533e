# cmake -DBUILD_DIR=<gradhpo build> -DROOT=<scratch dir> [-DCONFIG=<cfg>] -P install.cmake
# Installs the build into ROOT/prefix from scratch (so files deleted from the sources do not
# linger) and removes the consumer's previous build (so no cached path points elsewhere).
file(REMOVE_RECURSE ${ROOT}/prefix ${ROOT}/consumer)
set(config_args)
if(CONFIG)
  set(config_args --config ${CONFIG})
endif()
execute_process(
  COMMAND ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${ROOT}/prefix ${config_args}
  OUTPUT_QUIET
  RESULT_VARIABLE result)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "cmake --install ${BUILD_DIR} failed (${result})")
endif()
message(STATUS "installed gradhpo into ${ROOT}/prefix")
