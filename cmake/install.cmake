# `cmake --install <build> [--prefix <dir>]`: the static libraries, the public headers
# (include/mishka only), the CMake package `mishka` (find_package(mishka), targets mishka::*)
# and the pkg-config module `mishka` (docs/embedding.md).
#
# Included from the top-level CMakeLists.txt once every library target exists: install(TARGETS)
# may name targets of other directories, so the layers' CMakeLists.txt stay free of install
# rules. The custom target `mishka_libraries` builds exactly what is installed.

include_guard(GLOBAL)
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# Dependency order, users first: the order the pkg-config module links them in.
set(_mishka_installed_libs)
if(MISHKA_BUILD_ENGINE)
  list(APPEND _mishka_installed_libs mishka_admin mishka_repo mishka_db mishka_replica)
endif()
list(APPEND _mishka_installed_libs mishka_keyspace mishka_store)
if(MISHKA_BUILD_ENGINE)
  list(APPEND _mishka_installed_libs mishka_engine mishka_etcd_proto)
endif()
list(APPEND _mishka_installed_libs mishka_process mishka_telemetry mishka_pubsub mishka_common)

foreach(_lib IN LISTS _mishka_installed_libs)
  if(NOT TARGET ${_lib})
    message(FATAL_ERROR "cmake/install.cmake: library target ${_lib} does not exist")
  endif()
  # mishka_warnings (our warning flags, -Werror) is linked PRIVATE; a static library still
  # lists it as $<LINK_ONLY:mishka_warnings> in its link interface, which an export would then
  # have to carry. It contributes nothing to a link, so it is dropped from the link interface
  # only; the library's own compilation keeps it (LINK_LIBRARIES is untouched).
  get_target_property(_link_interface ${_lib} INTERFACE_LINK_LIBRARIES)
  if(_link_interface)
    list(REMOVE_ITEM _link_interface "$<LINK_ONLY:mishka_warnings>")
    set_property(TARGET ${_lib} PROPERTY INTERFACE_LINK_LIBRARIES "${_link_interface}")
  endif()
endforeach()

# The public headers need C++20 (operator<=>, defaulted operator==): users of the package get
# it from the targets, whatever their own default.
set_property(TARGET mishka_common APPEND PROPERTY INTERFACE_COMPILE_FEATURES cxx_std_20)

add_custom_target(mishka_libraries)
add_dependencies(mishka_libraries ${_mishka_installed_libs})

set(_mishka_exported ${_mishka_installed_libs})
if(MISHKA_BUILD_ENGINE)
  # The whole library in one name: the repo and its admin HTTP.
  add_library(mishka INTERFACE)
  add_library(mishka::mishka ALIAS mishka)
  target_link_libraries(mishka INTERFACE mishka_repo mishka_admin)
  list(APPEND _mishka_exported mishka)
endif()

set(_mishka_cmake_dir "${CMAKE_INSTALL_LIBDIR}/cmake/mishka")

# INCLUDES DESTINATION adds <prefix>/include to every exported target's include directories
# (the build tree's are $<BUILD_INTERFACE:...> and are left out of the export).
install(TARGETS ${_mishka_exported}
        EXPORT mishkaTargets
        ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}"
        INCLUDES DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")
# Only include/mishka: src/ headers (the admin server's included) are private.
install(DIRECTORY "${PROJECT_SOURCE_DIR}/include/mishka"
        DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}"
        FILES_MATCHING PATTERN "*.h")

install(EXPORT mishkaTargets
        NAMESPACE mishka::
        DESTINATION "${_mishka_cmake_dir}")
configure_package_config_file("${PROJECT_SOURCE_DIR}/cmake/mishkaConfig.cmake.in"
                              "${PROJECT_BINARY_DIR}/package/mishkaConfig.cmake"
                              INSTALL_DESTINATION "${_mishka_cmake_dir}")
write_basic_package_version_file("${PROJECT_BINARY_DIR}/package/mishkaConfigVersion.cmake"
                                 VERSION "${PROJECT_VERSION}"
                                 COMPATIBILITY SameMajorVersion)
install(FILES "${PROJECT_BINARY_DIR}/package/mishkaConfig.cmake"
              "${PROJECT_BINARY_DIR}/package/mishkaConfigVersion.cmake"
        DESTINATION "${_mishka_cmake_dir}")

# --- pkg-config -------------------------------------------------------------------------------
# The libraries are static, so the modules of everything they call go to Requires (not
# Requires.private): `pkg-config --libs mishka` alone must link. msgpack-cxx (header-only) and
# nlohmann-json (header-only, used inside .cc files only) have nothing to link.
set(MISHKA_PC_LIBS)
foreach(_lib IN LISTS _mishka_installed_libs)
  string(APPEND MISHKA_PC_LIBS " -l${_lib}")
endforeach()
string(STRIP "${MISHKA_PC_LIBS}" MISHKA_PC_LIBS)
set(MISHKA_PC_REQUIRES
    "absl_hash absl_flat_hash_map absl_btree absl_inlined_vector libcrypto")
if(MISHKA_BUILD_ENGINE)
  string(APPEND MISHKA_PC_REQUIRES " libssl grpc++ protobuf cpp-httplib")
endif()

# The module finds its prefix from its own location (${pcfiledir}), so an installed tree may be
# moved. Absolute install directories are taken as they are.
set(_pc_dir "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(MISHKA_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
else()
  file(RELATIVE_PATH _up "/prefix/${_pc_dir}" "/prefix")  # "../..", with a trailing slash
  string(REGEX REPLACE "/$" "" _up "${_up}")
  set(MISHKA_PC_PREFIX "\${pcfiledir}/${_up}")
endif()
foreach(_kind LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${_kind}}")
    set(MISHKA_PC_${_kind} "${CMAKE_INSTALL_${_kind}}")
  else()
    set(MISHKA_PC_${_kind} "\${prefix}/${CMAKE_INSTALL_${_kind}}")
  endif()
endforeach()
configure_file("${PROJECT_SOURCE_DIR}/cmake/mishka.pc.in" "${PROJECT_BINARY_DIR}/package/mishka.pc"
               @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/package/mishka.pc" DESTINATION "${_pc_dir}")
