# The dashboard's files, embedded into the gateway (included from api/CMakeLists.txt).
#
# `npm ci` installs the committed package.json + package-lock.json into
# <build>/web/node_modules (never into the source tree): uPlot, whose dist files are
# served with the page, and playwright-core, which drives the browser test (it does
# not download a browser: the test uses Debian's chromium). Then embed.cmake turns the
# page (index.html, app.js, style.css) and uPlot's two files into a C table of
# sl_asset (api/dashboard.h), so the gateway serves them with no web root on disk.
#
# Without npm the build still succeeds, with a warning: the page is embedded without
# uPlot and its chart panels say so. Set SL_NPM to choose the npm binary.
find_program(SL_NPM npm)
set(SL_WEB_SRC ${PROJECT_SOURCE_DIR}/web)
set(SL_WEB_BIN ${CMAKE_BINARY_DIR}/web)
set(SL_WEB_ASSETS_C ${SL_WEB_BIN}/assets.c)
file(MAKE_DIRECTORY ${SL_WEB_BIN})

# url-path=file pairs; the page itself is "/".
set(sl_web_files
    "/=${SL_WEB_SRC}/index.html"
    "/ui/app.js=${SL_WEB_SRC}/app.js"
    "/ui/style.css=${SL_WEB_SRC}/style.css")
set(sl_web_deps ${SL_WEB_SRC}/index.html ${SL_WEB_SRC}/app.js ${SL_WEB_SRC}/style.css)

if(SL_NPM)
    set(sl_npm_stamp ${SL_WEB_BIN}/node_modules/.sluice-npm-ci)
    add_custom_command(
        OUTPUT ${sl_npm_stamp} ${SL_WEB_BIN}/node_modules/uplot/dist/uPlot.iife.min.js
               ${SL_WEB_BIN}/node_modules/uplot/dist/uPlot.min.css
        COMMAND ${CMAKE_COMMAND} -E copy ${SL_WEB_SRC}/package.json ${SL_WEB_SRC}/package-lock.json
                ${SL_WEB_BIN}/
        COMMAND ${SL_NPM} ci --no-audit --no-fund --loglevel=error
        COMMAND ${CMAKE_COMMAND} -E touch ${sl_npm_stamp}
        WORKING_DIRECTORY ${SL_WEB_BIN}
        DEPENDS ${SL_WEB_SRC}/package.json ${SL_WEB_SRC}/package-lock.json
        COMMENT "npm ci in ${SL_WEB_BIN} (dashboard: uPlot; browser test: playwright-core)"
        VERBATIM)
    list(APPEND sl_web_files
         "/ui/uPlot.iife.min.js=${SL_WEB_BIN}/node_modules/uplot/dist/uPlot.iife.min.js"
         "/ui/uPlot.min.css=${SL_WEB_BIN}/node_modules/uplot/dist/uPlot.min.css")
    list(APPEND sl_web_deps ${sl_npm_stamp})
else()
    message(WARNING "npm not found: the dashboard is built without its chart library (uPlot) "
                    "and the browser test cannot run. Install the Debian packages nodejs and npm "
                    "(./sluice does) and configure again.")
endif()

string(REPLACE ";" "|" sl_web_files_arg "${sl_web_files}")
add_custom_command(
    OUTPUT ${SL_WEB_ASSETS_C}
    COMMAND ${CMAKE_COMMAND} "-DFILES=${sl_web_files_arg}" -DOUT=${SL_WEB_ASSETS_C}
            -P ${SL_WEB_SRC}/embed.cmake
    DEPENDS ${sl_web_deps} ${SL_WEB_SRC}/embed.cmake ${SL_WEB_SRC}/assets.cmake
    COMMENT "Embedding the dashboard into ${SL_WEB_ASSETS_C}"
    VERBATIM)
