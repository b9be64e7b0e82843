# Writes a C++ source that holds a file's text, so an installed binary needs no source tree
# (`chaosdrill demo` embeds scenarios/library/demo.yaml this way). Run at build time:
#   cmake -DINPUT=file -DOUTPUT=out.cc -DSYMBOL=name -P embed_file.cmake
# defines `extern const char name[]` (NUL-terminated) in namespace chaosdrill::cli.
file(READ "${INPUT}" content)
set(delim "cd_embed")  # C++ allows at most 16 characters
string(FIND "${content}" ")${delim}\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${INPUT} contains the raw-string delimiter )${delim}\"")
endif()
file(WRITE "${OUTPUT}.tmp"
  "// Generated from ${INPUT} by cli/embed_file.cmake. Do not edit.\n"
  "namespace chaosdrill::cli {\n"
  "extern const char ${SYMBOL}[];\n"
  "const char ${SYMBOL}[] = R\"${delim}(${content})${delim}\";\n"
  "}  // namespace chaosdrill::cli\n")
# Only touch the output when it changed, so an unchanged file does not relink.
execute_process(COMMAND ${CMAKE_COMMAND} -E copy_if_different "${OUTPUT}.tmp" "${OUTPUT}")
file(REMOVE "${OUTPUT}.tmp")
