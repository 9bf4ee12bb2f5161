#!/bin/sh
# Refresh the Swagger UI files that /docs serves (src/postback/web/static/swagger-ui/) from
# the npm package swagger-ui-dist, so the API docs need no CDN. Run by hand when upgrading:
#   sh scripts/vendor_swagger_ui.sh 5.35.0
# The files are committed; running postback never needs npm.
set -eu
VERSION=${1:-5.35.0}
TARGET=$(dirname "$0")/../src/postback/web/static/swagger-ui
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
(cd "$WORK" && npm pack --silent "swagger-ui-dist@$VERSION" >/dev/null && tar xzf ./*.tgz)
mkdir -p "$TARGET"
for file in swagger-ui-bundle.js swagger-ui.css favicon-32x32.png LICENSE NOTICE; do
  cp "$WORK/package/$file" "$TARGET/$file"
done
echo "swagger-ui-dist $VERSION" > "$TARGET/VERSION"
echo "Swagger UI $VERSION written to $TARGET"
