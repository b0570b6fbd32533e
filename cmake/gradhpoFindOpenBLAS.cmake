# Finds OpenBLAS and defines the imported target OpenBLAS::OpenBLAS (unless it exists already).
#
# Used twice: by the build (to decide GRADHPO_USE_BLAS's default) and by the installed
# gradhpoConfig.cmake (to recreate the target that gradhpo::engine links when built with
# GRADHPO_USE_BLAS=ON). OpenBLAS is linked explicitly, never through the generic libblas.so:
# on Debian that name may resolve to the slow reference BLAS (see STYLE.md, performance facts).
#
# Sets GRADHPO_OPENBLAS_FOUND and the cache entry GRADHPO_OPENBLAS_LIBRARY.
include_guard(GLOBAL)

function(gradhpo_find_openblas)
  if(TARGET OpenBLAS::OpenBLAS)
    set(GRADHPO_OPENBLAS_FOUND TRUE PARENT_SCOPE)
    return()
  endif()
  if(NOT GRADHPO_OPENBLAS_LIBRARY)
    # pkg-config first: it names the variant the system chose (pthread/openmp/serial).
    find_package(PkgConfig QUIET)
    if(PKG_CONFIG_FOUND)
      pkg_check_modules(_gradhpo_openblas QUIET openblas)
    endif()
    find_library(GRADHPO_OPENBLAS_LIBRARY NAMES openblas
                 HINTS ${_gradhpo_openblas_LIBRARY_DIRS}
                 DOC "OpenBLAS library that Eigen's products are routed to (GRADHPO_USE_BLAS)")
  endif()
  if(GRADHPO_OPENBLAS_LIBRARY)
    add_library(OpenBLAS::OpenBLAS UNKNOWN IMPORTED)
    set_target_properties(OpenBLAS::OpenBLAS PROPERTIES IMPORTED_LOCATION "${GRADHPO_OPENBLAS_LIBRARY}")
    set(GRADHPO_OPENBLAS_FOUND TRUE PARENT_SCOPE)
  else()
    set(GRADHPO_OPENBLAS_FOUND FALSE PARENT_SCOPE)
  endif()
endfunction()
