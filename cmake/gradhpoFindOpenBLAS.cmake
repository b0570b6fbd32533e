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

# Finds OpenBLAS's OpenMP build (Debian: libopenblas-openmp-dev) and defines the imported target
# OpenBLAS::OpenMP, with the directory of its cblas.h. The GEMM planner (engine/kernels/gemm.h)
# calls it: the OpenMP build runs on our OpenMP threads, where the pthreads build would start a
# second pool. Its soname is the generic libopenblas.so.0, which Debian's alternatives may point
# at another build; the library's own folder therefore goes on the run path (CMake adds it for a
# library given by full path outside the system folders), and the planner checks at run time
# (openblas_get_parallel) which build it got.
#
# Sets GRADHPO_OPENBLAS_OPENMP_FOUND and the cache entries GRADHPO_OPENBLAS_OPENMP_LIBRARY and
# GRADHPO_OPENBLAS_OPENMP_INCLUDE_DIR.
function(gradhpo_find_openblas_openmp)
  if(TARGET OpenBLAS::OpenMP)
    set(GRADHPO_OPENBLAS_OPENMP_FOUND TRUE PARENT_SCOPE)
    return()
  endif()
  set(_dirs ${CMAKE_LIBRARY_ARCHITECTURE}/openblas-openmp openblas-openmp)
  find_library(GRADHPO_OPENBLAS_OPENMP_LIBRARY NAMES openblas PATH_SUFFIXES ${_dirs}
               PATHS /usr/lib /usr/local/lib NO_DEFAULT_PATH
               DOC "OpenBLAS built with OpenMP (the GEMM planner's second library)")
  find_path(GRADHPO_OPENBLAS_OPENMP_INCLUDE_DIR cblas.h
            PATHS /usr/include /usr/local/include PATH_SUFFIXES ${_dirs} NO_DEFAULT_PATH
            DOC "Folder of the cblas.h that belongs to GRADHPO_OPENBLAS_OPENMP_LIBRARY")
  if(GRADHPO_OPENBLAS_OPENMP_LIBRARY AND GRADHPO_OPENBLAS_OPENMP_INCLUDE_DIR)
    add_library(OpenBLAS::OpenMP UNKNOWN IMPORTED)
    set_target_properties(OpenBLAS::OpenMP PROPERTIES IMPORTED_LOCATION "${GRADHPO_OPENBLAS_OPENMP_LIBRARY}")
    set(GRADHPO_OPENBLAS_OPENMP_FOUND TRUE PARENT_SCOPE)
  else()
    set(GRADHPO_OPENBLAS_OPENMP_FOUND FALSE PARENT_SCOPE)
  endif()
endfunction()
