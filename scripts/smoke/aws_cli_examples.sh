#!/usr/bin/env bash
# The AWS CLI commands the README shows, run against a live endpoint and checked.
#
# Usage: aws_cli_examples.sh [ENDPOINT]   (default: $SQUALL_ENDPOINT, else http://127.0.0.1:8000)
# Needs the `aws` command (AWS CLI v1 or v2). Any credentials work; dummy ones are set here.
set -euo pipefail

ENDPOINT="${1:-${SQUALL_ENDPOINT:-http://127.0.0.1:8000}}"
TABLE="Music_cli_$$"

export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
unset AWS_SESSION_TOKEN
export AWS_DEFAULT_REGION=us-east-1
export AWS_PAGER=""
export AWS_EC2_METADATA_DISABLED=true
# Keep a developer's own profile and config out of it.
export AWS_CONFIG_FILE=/dev/null
export AWS_SHARED_CREDENTIALS_FILE=/dev/null

# The CLI as a command, or as a module when pip put it where PATH does not look (pyenv shims
# appear only after a rehash).
if command -v aws >/dev/null 2>&1; then AWS=(aws); else AWS=(python3 -m awscli); fi

ddb() {
    "${AWS[@]}" dynamodb --endpoint-url "$ENDPOINT" --output json "$@"
}

# Runs a Python assertion on the JSON given on stdin: `check 'expr' <<<"$out"`, with the
# parsed document bound to `d`.
check() {
    local what="$1" expr="$2" json
    json="$(cat)"
    if ! python3 -c "import json,sys; d=json.loads(sys.stdin.read().strip() or 'null'); sys.exit(0 if ($expr) else 1)" <<<"$json"; then
        echo "FAIL  $what" >&2
        echo "      expected: $expr" >&2
        echo "      got: $json" >&2
        exit 1
    fi
    echo "ok    $what"
}

cleanup() {
    ddb delete-table --table-name "$TABLE" >/dev/null 2>&1 || true
}
trap cleanup EXIT

echo "aws cli against $ENDPOINT ($("${AWS[@]}" --version 2>&1))"

out=$(ddb create-table \
    --table-name "$TABLE" \
    --attribute-definitions AttributeName=Artist,AttributeType=S AttributeName=SongTitle,AttributeType=S \
    --key-schema AttributeName=Artist,KeyType=HASH AttributeName=SongTitle,KeyType=RANGE \
    --billing-mode PAY_PER_REQUEST)
check "create-table" "d['TableDescription']['TableName'] == '$TABLE'" <<<"$out"

ddb wait table-exists --table-name "$TABLE"
out=$(ddb describe-table --table-name "$TABLE")
check "describe-table: ACTIVE" "d['Table']['TableStatus'] == 'ACTIVE'" <<<"$out"

out=$(ddb list-tables)
check "list-tables" "'$TABLE' in d['TableNames']" <<<"$out"

ddb put-item --table-name "$TABLE" \
    --item '{"Artist": {"S": "No One You Know"}, "SongTitle": {"S": "Call Me Today"},
             "AlbumTitle": {"S": "Somewhat Famous"}, "Awards": {"N": "1"}}'
ddb put-item --table-name "$TABLE" \
    --item '{"Artist": {"S": "No One You Know"}, "SongTitle": {"S": "Howdy"},
             "AlbumTitle": {"S": "Somewhat Famous"}, "Awards": {"N": "2"}}'
ddb put-item --table-name "$TABLE" \
    --item '{"Artist": {"S": "Acme Band"}, "SongTitle": {"S": "Happy Day"},
             "AlbumTitle": {"S": "Songs About Life"}, "Awards": {"N": "10"}}'
echo "ok    put-item (3 items)"

out=$(ddb get-item --table-name "$TABLE" --consistent-read \
    --key '{"Artist": {"S": "Acme Band"}, "SongTitle": {"S": "Happy Day"}}')
check "get-item" "d['Item']['AlbumTitle'] == {'S': 'Songs About Life'} and d['Item']['Awards'] == {'N': '10'}" <<<"$out"

out=$(ddb get-item --table-name "$TABLE" \
    --key '{"Artist": {"S": "Acme Band"}, "SongTitle": {"S": "Happy Day"}}' \
    --projection-expression "SongTitle")
check "get-item --projection-expression" "d['Item'] == {'SongTitle': {'S': 'Happy Day'}}" <<<"$out"

out=$(ddb query --table-name "$TABLE" \
    --key-condition-expression "Artist = :name" \
    --expression-attribute-values '{":name": {"S": "No One You Know"}}')
check "query" "d['Count'] == 2 and [i['SongTitle']['S'] for i in d['Items']] == ['Call Me Today', 'Howdy']" <<<"$out"

out=$(ddb query --table-name "$TABLE" \
    --key-condition-expression "Artist = :name AND begins_with(SongTitle, :p)" \
    --expression-attribute-values '{":name": {"S": "No One You Know"}, ":p": {"S": "How"}}' \
    --no-scan-index-forward)
check "query begins_with" "[i['SongTitle']['S'] for i in d['Items']] == ['Howdy']" <<<"$out"

out=$(ddb update-item --table-name "$TABLE" \
    --key '{"Artist": {"S": "Acme Band"}, "SongTitle": {"S": "Happy Day"}}' \
    --update-expression "SET AlbumTitle = :newval, Awards = Awards + :one" \
    --expression-attribute-values '{":newval": {"S": "Updated Album Title"}, ":one": {"N": "1"}}' \
    --return-values ALL_NEW)
check "update-item" "d['Attributes']['AlbumTitle'] == {'S': 'Updated Album Title'} and d['Attributes']['Awards'] == {'N': '11'}" <<<"$out"

if ddb put-item --table-name "$TABLE" \
    --item '{"Artist": {"S": "Acme Band"}, "SongTitle": {"S": "Happy Day"}}' \
    --condition-expression "attribute_not_exists(Artist)" 2>/tmp/squall_cli_err_$$; then
    echo "FAIL  conditional put-item should have failed" >&2
    exit 1
fi
grep -q "ConditionalCheckFailedException" /tmp/squall_cli_err_$$ || {
    echo "FAIL  conditional put-item error:" >&2
    cat /tmp/squall_cli_err_$$ >&2
    exit 1
}
rm -f /tmp/squall_cli_err_$$
echo "ok    conditional put-item fails with ConditionalCheckFailedException"

out=$(ddb scan --table-name "$TABLE")
check "scan" "d['Count'] == 3 and d['ScannedCount'] == 3" <<<"$out"

out=$(ddb scan --table-name "$TABLE" \
    --filter-expression "Awards > :min" \
    --expression-attribute-values '{":min": {"N": "1"}}' \
    --page-size 1)
check "scan --filter-expression (paged by the CLI)" "d['Count'] == 2" <<<"$out"

ddb delete-item --table-name "$TABLE" \
    --key '{"Artist": {"S": "No One You Know"}, "SongTitle": {"S": "Howdy"}}'
out=$(ddb get-item --table-name "$TABLE" --consistent-read \
    --key '{"Artist": {"S": "No One You Know"}, "SongTitle": {"S": "Howdy"}}')
check "delete-item" "d is None or 'Item' not in d" <<<"$out"

out=$(ddb delete-table --table-name "$TABLE")
check "delete-table" "d['TableDescription']['TableName'] == '$TABLE'" <<<"$out"
ddb wait table-not-exists --table-name "$TABLE"
out=$(ddb list-tables)
check "list-tables after delete" "'$TABLE' not in d['TableNames']" <<<"$out"
trap - EXIT

echo "aws cli examples: all passed"
