# One helper per kind of target (abseil style): every imbus target gets the same
# warnings, sanitizer flags and include root.

set(IMBUS_WARNINGS -Wall -Wextra -Wshadow -Wconversion -Wno-sign-conversion
    -Wnon-virtual-dtor -Wold-style-cast -Woverloaded-virtual)
if(IMBUS_WERROR)
  list(APPEND IMBUS_WARNINGS -Werror)
endif()

function(imbus_apply_common target)
  target_compile_options(${target} PRIVATE ${IMBUS_WARNINGS})
  target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR})
  if(IMBUS_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=address,undefined -fno-omit-frame-pointer)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  endif()
  if(IMBUS_FUZZ)  # libFuzzer coverage; any UB aborts so the fuzzer sees it
    target_compile_options(${target} PRIVATE -fsanitize=fuzzer-no-link,address,undefined
                           -fno-sanitize-recover=all -fno-omit-frame-pointer)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  endif()
endfunction()

# imbus_cc_library(NAME codec SRCS a.cc b.cc DEPS x y)  ->  target imbus_codec, alias imbus::codec
function(imbus_cc_library)
  cmake_parse_arguments(A "" "NAME" "SRCS;DEPS" ${ARGN})
  add_library(imbus_${A_NAME} STATIC ${A_SRCS})
  add_library(imbus::${A_NAME} ALIAS imbus_${A_NAME})
  imbus_apply_common(imbus_${A_NAME})
  target_link_libraries(imbus_${A_NAME} PUBLIC ${A_DEPS})
  if(IMBUS_SANITIZE)
    target_link_options(imbus_${A_NAME} INTERFACE -fsanitize=address,undefined)
  endif()
endfunction()

# imbus_cc_binary(NAME imbus-broker SRCS main.cc DEPS imbus::broker [SERVER])
# SERVER: a server program, linked with jemalloc when IMBUS_JEMALLOC is on (it then
# serves every malloc of the process, the libraries' too).
function(imbus_cc_binary)
  cmake_parse_arguments(A "SERVER" "NAME" "SRCS;DEPS" ${ARGN})
  add_executable(${A_NAME} ${A_SRCS})
  imbus_apply_common(${A_NAME})
  target_link_libraries(${A_NAME} PRIVATE ${A_DEPS})
  if(A_SERVER AND IMBUS_JEMALLOC)
    # --no-as-needed: nothing calls jemalloc by name, so a linker that drops unused
    # libraries would drop it and leave glibc's malloc in place.
    target_link_libraries(${A_NAME} PRIVATE "-Wl,--no-as-needed" PkgConfig::JEMALLOC)
  endif()
  # All programs land in <build>/bin, where scripts/up and the README look.
  set_target_properties(${A_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/bin)
endfunction()

# imbus_cc_test(NAME codec_frame_test SRCS frame_test.cc DEPS imbus::codec
#               [TIMEOUT 60] [LABELS integration] [RESOURCE_LOCK heavy_load] [RUN_SERIAL])
# RESOURCE_LOCK: tests holding the same lock never run at the same time (the heavy
# ones would contend for the two cores and the one MariaDB); RUN_SERIAL: alone.
# LABELS normal_only: run in the normal build only, not again under ASan (scripts/test).
function(imbus_cc_test)
  cmake_parse_arguments(A "RUN_SERIAL" "NAME;TIMEOUT;RESOURCE_LOCK" "SRCS;DEPS;LABELS" ${ARGN})
  if(NOT A_TIMEOUT)
    set(A_TIMEOUT 60)
  endif()
  add_executable(${A_NAME} ${A_SRCS})
  imbus_apply_common(${A_NAME})
  target_link_libraries(${A_NAME} PRIVATE ${A_DEPS} GTest::gtest GTest::gtest_main)
  add_test(NAME ${A_NAME} COMMAND ${A_NAME})
  set_tests_properties(${A_NAME} PROPERTIES TIMEOUT ${A_TIMEOUT})
  if(A_LABELS)
    set_tests_properties(${A_NAME} PROPERTIES LABELS "${A_LABELS}")
  endif()
  if(A_RESOURCE_LOCK)
    set_tests_properties(${A_NAME} PROPERTIES RESOURCE_LOCK "${A_RESOURCE_LOCK}")
  endif()
  if(A_RUN_SERIAL)
    set_tests_properties(${A_NAME} PROPERTIES RUN_SERIAL TRUE)
  endif()
endfunction()
