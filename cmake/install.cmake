# Installation: the shared and static libraries, the public header, a pkg-config file (gram.pc)
# and a CMake package (find_package(gram) → gram::gram, gram::gram_static).
# Both gram.pc and gramConfig.cmake locate the prefix relative to their own location, so the tree
# works wherever it is installed (cmake --install build --prefix DIR) or moved afterwards.
include(CMakePackageConfigHelpers)

set(GRAM_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/gram CACHE STRING
    "Where gramConfig.cmake is installed, relative to the prefix")
set(GRAM_INSTALL_PKGCONFIGDIR ${CMAKE_INSTALL_LIBDIR}/pkgconfig CACHE STRING
    "Where gram.pc is installed, relative to the prefix")

install(TARGETS gram gram_static EXPORT gramTargets
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${PROJECT_SOURCE_DIR}/include/gram.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

# ---- CMake package ----------------------------------------------------------------------------
install(EXPORT gramTargets NAMESPACE gram:: DESTINATION ${GRAM_INSTALL_CMAKEDIR})
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/gramConfig.cmake.in
  ${PROJECT_BINARY_DIR}/gramConfig.cmake
  INSTALL_DESTINATION ${GRAM_INSTALL_CMAKEDIR})
# The soname is the major version, so any release with the same major version is compatible.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/gramConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/gramConfig.cmake ${PROJECT_BINARY_DIR}/gramConfigVersion.cmake
  DESTINATION ${GRAM_INSTALL_CMAKEDIR})

# ---- pkg-config ---------------------------------------------------------------------------------
# prefix = ${pcfiledir}/<the way back from the .pc directory to the prefix>, unless the install
# directories were given as absolute paths.
if(IS_ABSOLUTE "${GRAM_INSTALL_PKGCONFIGDIR}")
  set(GRAM_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
else()
  file(RELATIVE_PATH _gram_pc_up "/__prefix__/${GRAM_INSTALL_PKGCONFIGDIR}" "/__prefix__")
  string(REGEX REPLACE "/$" "" _gram_pc_up "${_gram_pc_up}")
  set(GRAM_PC_PREFIX "\${pcfiledir}/${_gram_pc_up}")
endif()
foreach(_d LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${_d}}")
    set(GRAM_PC_${_d} "${CMAKE_INSTALL_${_d}}")
  else()
    set(GRAM_PC_${_d} "\${prefix}/${CMAKE_INSTALL_${_d}}")
  endif()
endforeach()
# What a static link needs besides libgram.a: OpenMP's runtime (through the compiler driver's
# flag, so it names the right runtime), OpenBLAS and libm.
set(GRAM_PC_LIBS_PRIVATE "${OpenMP_C_FLAGS} -lopenblas -lm")
configure_file(${CMAKE_CURRENT_LIST_DIR}/gram.pc.in ${PROJECT_BINARY_DIR}/gram.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/gram.pc DESTINATION ${GRAM_INSTALL_PKGCONFIGDIR})
