# Helpers shared by every folder's CMakeLists.txt.
#
#   gradhpo_add_library(NAME <name> [DEPS <targets>...] [DEFINITIONS <defs>...] [OPTIONAL])
#       The library of one source folder: target gradhpo_<name>, alias gradhpo::<name>,
#       exported as gradhpo::<name>. Sources are <folder>/*.cpp and <folder>/*/*.cpp (plus *.cu
#       when CUDA is enabled), globbed with CONFIGURE_DEPENDS so that adding a file needs no
#       CMake edit; a subfolder with a CMakeLists.txt of its own is another component and is left
#       out (hpo/tasks is gradhpo::tasks, not part of gradhpo::hpo). DEPS and DEFINITIONS are
#       PUBLIC (a user of the library gets them too).
#       A folder with no sources yet becomes an INTERFACE library (headers and deps only), or no
#       target at all when OPTIONAL is given. Headers (*.h, *.cuh) install to
#       include/gradhpo/<path of the folder from the source root>/..., keeping subfolders, so
#       that <gradhpo/hpo/tasks/x.h> means the same in the build tree and installed.
#
#   gradhpo_warnings(<target>)
#       Our warning flags, for executables (libraries get them from gradhpo_add_library).
#
#   gradhpo_native(<target>)
#       -march=native (when GRADHPO_NATIVE), PRIVATE: machine-specific flags never reach what a
#       consumer inherits from an exported target. For our executables (libraries get it from
#       gradhpo_add_library). The public headers hold no Eigen objects and no code whose layout
#       depends on the vector width, so a consumer may compile them with any flags.
#
# The global property GRADHPO_LIBRARIES lists the gradhpo::<folder> targets created so far, in
# dependency order; tools/, tests/ and bench/ link them all.
include_guard(GLOBAL)
include(GNUInstallDirs)

function(gradhpo_warnings target)
  target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra>)
  if(NOT GRADHPO_OPENMP)
    # `#pragma omp` lines stay in the sources; without -fopenmp they are simply ignored.
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-Wno-unknown-pragmas>)
  endif()
endfunction()

function(gradhpo_native target)
  if(GRADHPO_NATIVE)
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-march=native>)
  endif()
endfunction()

function(gradhpo_add_library)
  cmake_parse_arguments(PARSE_ARGV 0 arg "OPTIONAL" "NAME" "DEPS;DEFINITIONS")
  if(NOT arg_NAME)
    message(FATAL_ERROR "gradhpo_add_library: NAME is required")
  endif()
  set(target gradhpo_${arg_NAME})
  set(dir ${CMAKE_CURRENT_SOURCE_DIR})

  set(patterns ${dir}/*.cpp ${dir}/*/*.cpp)
  get_property(languages GLOBAL PROPERTY ENABLED_LANGUAGES)
  if(CUDA IN_LIST languages)
    list(APPEND patterns ${dir}/*.cu ${dir}/*/*.cu)
  endif()
  file(GLOB sources CONFIGURE_DEPENDS ${patterns})
  file(GLOB headers CONFIGURE_DEPENDS RELATIVE ${dir} ${dir}/*.h ${dir}/*/*.h ${dir}/*.cuh ${dir}/*/*.cuh)
  # Subfolders that are components of their own.
  file(GLOB own_lists RELATIVE ${dir} ${dir}/*/CMakeLists.txt)
  foreach(list IN LISTS own_lists)
    get_filename_component(sub ${list} DIRECTORY)
    list(FILTER sources EXCLUDE REGEX "^${dir}/${sub}/")
    list(FILTER headers EXCLUDE REGEX "^${sub}/")
  endforeach()
  file(RELATIVE_PATH include_subdir ${PROJECT_SOURCE_DIR} ${dir})

  if(sources)
    add_library(${target} ${sources})
    set(scope PUBLIC)
    gradhpo_warnings(${target})
    gradhpo_native(${target})
    if(GRADHPO_SANITIZE)
      # A sanitized library needs the sanitizer runtime in whatever links it, installed or not.
      target_link_options(${target} PUBLIC -fsanitize=${GRADHPO_SANITIZE})
    endif()
  elseif(arg_OPTIONAL)
    return()
  else()
    add_library(${target} INTERFACE)
    set(scope INTERFACE)
  endif()

  add_library(gradhpo::${arg_NAME} ALIAS ${target})
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${arg_NAME})
  target_compile_features(${target} ${scope} cxx_std_20)
  # <gradhpo/<folder>/x.h>: the build tree reaches the sources through the symlink
  # ${GRADHPO_BUILD_INCLUDE_DIR}/gradhpo -> source root (made by the top-level CMakeLists).
  target_include_directories(${target} ${scope}
    $<BUILD_INTERFACE:${GRADHPO_BUILD_INCLUDE_DIR}>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  if(arg_DEPS)
    target_link_libraries(${target} ${scope} ${arg_DEPS})
  endif()
  if(arg_DEFINITIONS)
    target_compile_definitions(${target} ${scope} ${arg_DEFINITIONS})
  endif()

  install(TARGETS ${target} EXPORT gradhpoTargets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
    RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  foreach(header IN LISTS headers)
    get_filename_component(subdir ${header} DIRECTORY)
    install(FILES ${dir}/${header}
      DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/gradhpo/${include_subdir}/${subdir})
  endforeach()

  set_property(GLOBAL APPEND PROPERTY GRADHPO_LIBRARIES gradhpo::${arg_NAME})
endfunction()
