# Project-wide compile settings for our own targets (not for generated protobuf code).
function(chaosdrill_target_options target)
  # Designated initializers that omit defaulted members are the house style for spec
  # tables; GCC 12 would warn on each.
  target_compile_options(${target} PRIVATE -Wall -Wextra -Werror -Wno-missing-field-initializers)
  target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR})
endfunction()
