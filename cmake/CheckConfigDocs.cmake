# Fails when docs/config.md does not contain the settings table the binary prints.
execute_process(COMMAND ${BIN} --help-config OUTPUT_VARIABLE table RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${BIN} --help-config failed")
endif()
file(READ ${DOC} doc)
string(FIND "${doc}" "${table}" at)
if(at EQUAL -1)
    message(FATAL_ERROR "docs/config.md is out of date: regenerate its table with "
                        "`sluice-gateway --help-config`")
endif()
