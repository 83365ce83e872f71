# Warnings and sanitizers, applied per target so that third-party code is untouched.
function(jobq_target_flags tgt)
  target_compile_options(${tgt} PRIVATE -Wall -Wextra -Wformat=2 -Wstrict-prototypes
    -Wshadow -Wno-unused-parameter)
  if(JOBQ_WERROR)
    target_compile_options(${tgt} PRIVATE -Werror)
  endif()
endfunction()

if(JOBQ_SANITIZER STREQUAL "address")
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
elseif(JOBQ_SANITIZER STREQUAL "undefined")
  add_compile_options(-fsanitize=undefined -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=undefined)
elseif(JOBQ_SANITIZER STREQUAL "thread")
  add_compile_options(-fsanitize=thread)
  add_link_options(-fsanitize=thread)
elseif(NOT JOBQ_SANITIZER STREQUAL "")
  message(FATAL_ERROR "JOBQ_SANITIZER must be address, undefined, thread or empty")
endif()

# jobq_add_test(NAME SOURCES... [TIMEOUT s] [LIBS ...]): one check suite per executable,
# one CTest per executable, always with a timeout.
function(jobq_add_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 60)
  endif()
  add_executable(${name} ${T_SOURCES})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR} ${PROJECT_SOURCE_DIR}/include
    ${PROJECT_SOURCE_DIR}/tests/support)
  target_compile_definitions(${name} PRIVATE _GNU_SOURCE)
  target_link_libraries(${name} PRIVATE jobq_static PkgConfig::CHECK PkgConfig::ZMQ
    PkgConfig::MSGPACK Threads::Threads rt m ${T_LIBS})
  jobq_target_flags(${name})
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT}
    ENVIRONMENT "JOBQ_BIN=$<TARGET_FILE:jobq>;JOBQ_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
endfunction()
