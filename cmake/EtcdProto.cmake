# Generates etcd's v3 gRPC client (C++) at build time from the .proto files Debian installs, and
# compiles it into the static library target `mishka_etcd_proto`.
#
# Nothing of etcd is copied into the repository. The sources are:
#   golang-etcd-server-dev                         go.etcd.io/etcd/{etcdserver/etcdserverpb/rpc.proto,
#                                                  mvcc/mvccpb/kv.proto, auth/authpb/auth.proto}
#   golang-github-gogo-protobuf-dev                gogoproto/gogo.proto
#   golang-github-grpc-ecosystem-grpc-gateway-dev  google/api/{annotations,http}.proto
#
# rpc.proto imports its siblings as "etcd/mvcc/mvccpb/kv.proto", so protoc gets an import root in
# the build tree whose `etcd` entry is a symlink to go.etcd.io/etcd. Every file must be reached
# through exactly one import path, or protoc reports its messages as "already defined".
#
# Users include e.g. "etcd/etcdserver/etcdserverpb/rpc.grpc.pb.h". The generated include folder
# is a SYSTEM include so that our warning flags do not apply to the generated headers.

include_guard(GLOBAL)

set(MISHKA_GOCODE_DIR "/usr/share/gocode/src" CACHE PATH
    "Root of Debian's Go source packages, holding etcd's, gogo's and googleapis' .proto files")

set(_etcd_root "${MISHKA_GOCODE_DIR}/go.etcd.io/etcd")
set(_gogo_root "${MISHKA_GOCODE_DIR}/github.com/gogo/protobuf")
set(_googleapis_root
    "${MISHKA_GOCODE_DIR}/github.com/grpc-ecosystem/grpc-gateway/third_party/googleapis")

# Each entry: <import root>|<path under it>|<Debian package that installs it>. The first one,
# rpc.proto, is the only file with services: only it gets gRPC stubs (the others would yield
# empty .grpc.pb.cc files that still take seconds each to compile).
set(_etcd_protos
    "${_etcd_root}|etcdserver/etcdserverpb/rpc.proto|golang-etcd-server-dev"
    "${_etcd_root}|mvcc/mvccpb/kv.proto|golang-etcd-server-dev"
    "${_etcd_root}|auth/authpb/auth.proto|golang-etcd-server-dev"
    "${_gogo_root}|gogoproto/gogo.proto|golang-github-gogo-protobuf-dev"
    "${_googleapis_root}|google/api/annotations.proto|golang-github-grpc-ecosystem-grpc-gateway-dev"
    "${_googleapis_root}|google/api/http.proto|golang-github-grpc-ecosystem-grpc-gateway-dev")

# --- tools and libraries -------------------------------------------------------------------------
find_package(Protobuf QUIET)
if(NOT Protobuf_FOUND)
  message(FATAL_ERROR "mishka engine: protobuf not found; install libprotobuf-dev and "
                      "protobuf-compiler (scripts/setup.sh), or configure with "
                      "-DMISHKA_BUILD_ENGINE=OFF")
endif()
find_program(MISHKA_PROTOC NAMES protoc HINTS "${Protobuf_PROTOC_EXECUTABLE}")
if(NOT MISHKA_PROTOC)
  message(FATAL_ERROR "mishka engine: protoc not found; install protobuf-compiler "
                      "(scripts/setup.sh)")
endif()
find_program(MISHKA_GRPC_CPP_PLUGIN NAMES grpc_cpp_plugin)
if(NOT MISHKA_GRPC_CPP_PLUGIN)
  message(FATAL_ERROR "mishka engine: grpc_cpp_plugin not found; install protobuf-compiler-grpc "
                      "(scripts/setup.sh)")
endif()
find_package(gRPC CONFIG QUIET)
if(NOT gRPC_FOUND OR NOT TARGET gRPC::grpc++)
  message(FATAL_ERROR "mishka engine: the gRPC C++ library (CMake package gRPC) was not found; "
                      "install libgrpc++-dev (scripts/setup.sh)")
endif()

# --- the .proto files ----------------------------------------------------------------------------
set(_proto_dir "${CMAKE_BINARY_DIR}/etcd_proto")
set(_import_dir "${_proto_dir}/import")  # holds only the `etcd` symlink
set(_gen_dir "${_proto_dir}/gen")

set(_proto_args)   # paths as protoc sees them (relative to an import root)
set(_proto_files)  # real files, for DEPENDS
set(_gen_sources)
set(_gen_headers)
set(_service_proto "etcd/etcdserver/etcdserverpb/rpc.proto")
foreach(_entry IN LISTS _etcd_protos)
  string(REPLACE "|" ";" _entry "${_entry}")
  list(GET _entry 0 _root)
  list(GET _entry 1 _rel)
  list(GET _entry 2 _package)
  if(NOT EXISTS "${_root}/${_rel}")
    message(FATAL_ERROR "mishka engine: ${_root}/${_rel} is missing; install the Debian package "
                        "${_package} (scripts/setup.sh), or configure with "
                        "-DMISHKA_BUILD_ENGINE=OFF")
  endif()
  list(APPEND _proto_files "${_root}/${_rel}")
  if(_root STREQUAL _etcd_root)
    set(_rel "etcd/${_rel}")  # reached through the symlink
  endif()
  list(APPEND _proto_args "${_rel}")
  string(REGEX REPLACE "\\.proto$" "" _stem "${_rel}")
  set(_suffixes pb)
  if(_rel STREQUAL _service_proto)
    list(APPEND _suffixes grpc.pb)
  endif()
  foreach(_suffix IN LISTS _suffixes)
    list(APPEND _gen_sources "${_gen_dir}/${_stem}.${_suffix}.cc")
    list(APPEND _gen_headers "${_gen_dir}/${_stem}.${_suffix}.h")
  endforeach()
endforeach()

file(MAKE_DIRECTORY "${_import_dir}" "${_gen_dir}")
if(IS_SYMLINK "${_import_dir}/etcd")
  file(READ_SYMLINK "${_import_dir}/etcd" _current_target)
  if(NOT _current_target STREQUAL _etcd_root)  # MISHKA_GOCODE_DIR changed
    file(REMOVE "${_import_dir}/etcd")
  endif()
endif()
if(NOT IS_SYMLINK "${_import_dir}/etcd")
  file(CREATE_LINK "${_etcd_root}" "${_import_dir}/etcd" SYMBOLIC)
endif()

set(_protoc_paths "--proto_path=${_import_dir}" "--proto_path=${_gogo_root}"
                  "--proto_path=${_googleapis_root}")
add_custom_command(
  OUTPUT ${_gen_sources} ${_gen_headers}
  COMMAND "${MISHKA_PROTOC}" ${_protoc_paths} "--cpp_out=${_gen_dir}" ${_proto_args}
  COMMAND "${MISHKA_PROTOC}" ${_protoc_paths} "--grpc_out=${_gen_dir}"
          "--plugin=protoc-gen-grpc=${MISHKA_GRPC_CPP_PLUGIN}" "${_service_proto}"
  DEPENDS ${_proto_files} "${MISHKA_PROTOC}" "${MISHKA_GRPC_CPP_PLUGIN}"
  COMMENT "Generating the etcd v3 gRPC client from Debian's .proto files"
  VERBATIM)

# Generated code: no mishka_warnings, no -Werror.
add_library(mishka_etcd_proto STATIC ${_gen_sources} ${_gen_headers})
target_include_directories(mishka_etcd_proto SYSTEM PUBLIC "$<BUILD_INTERFACE:${_gen_dir}>")
target_link_libraries(mishka_etcd_proto PUBLIC gRPC::grpc++ protobuf::libprotobuf)
# Generated code is treated like the Debian libraries it calls (libprotobuf and gRPC are neither
# instrumented nor built with our debug info): no sanitizers, no debug info. Measured here, that
# makes its largest file compile in 12 s instead of 20 s (release) and 55 s (ASan).
target_compile_options(mishka_etcd_proto PRIVATE -g0)
if(MISHKA_SANITIZE)
  target_compile_options(mishka_etcd_proto PRIVATE -fno-sanitize=address,undefined)
endif()
