#!/usr/bin/env bash
# Loads a little demo data through the public API (so it also shows how to
# call it). Does nothing when articles already exist.
set -euo pipefail
BASE=${1:-http://127.0.0.1:8080}

json() { curl -fsS -H 'content-type: application/json' "$@"; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

# Services register as they come up; give the last ones a moment.
existing=""
for _ in $(seq 1 50); do
  existing=$(curl -fsS "$BASE/api/v1/articles?limit=1" 2>/dev/null | field "['items'].__len__()" 2>/dev/null) && break
  sleep 0.2
done
if [ -z "$existing" ]; then
  echo "the article list did not answer; no demo data loaded" >&2
  exit 1
fi
# One page view: breakers are made on their first call, so this makes the
# article list's breakers exist for the dashboard and the admin API.
first_page() { curl -fsS -o /dev/null "$BASE/api/v1/articles?limit=20"; }
if [ "$existing" != 0 ]; then
  first_page
  echo "demo data already present (make reset, or make run FRESH=1, starts empty)"
  exit 0
fi

register() { # username display_name
  # 409 when the user exists already (data kept from an earlier run): log in.
  curl -sS -o /dev/null -H 'content-type: application/json' -X POST "$BASE/api/v1/users" \
    -d "{\"username\":\"$1\",\"password\":\"newsroom-demo\",\"display_name\":\"$2\"}"
  json -X POST "$BASE/api/v1/sessions" -d "{\"username\":\"$1\",\"password\":\"newsroom-demo\"}" | field "['token']"
}

editor=$(register editor "The Editor")
reader=$(register reader "A Reader")

publish() { # token title body -> id
  json -X POST "$BASE/api/v1/articles" -H "authorization: Bearer $1" \
    -d "{\"title\":\"$2\",\"body\":\"$3\"}" | field "['id']"
}
comment() { # token article body
  json -X POST "$BASE/api/v1/articles/$2/comments" -H "authorization: Bearer $1" \
    -d "{\"body\":\"$3\"}" >/dev/null
}

a1=$(publish "$editor" "Central bank holds rates steady" "Policy makers kept the benchmark rate unchanged, citing cooling inflation.")
a2=$(publish "$editor" "Markets rally on strong jobs data" "Stocks rose across the board after payrolls beat expectations.")
a3=$(publish "$editor" "Oil slips as inventories build" "Crude fell for a third session as stockpiles grew more than forecast.")
comment "$reader" "$a1" "As expected."
comment "$reader" "$a2" "Great news for the quarter."
comment "$editor" "$a2" "Thanks for reading."
first_page
echo "demo data loaded: articles $a1, $a2, $a3 by 'editor'; password 'newsroom-demo'"
