#!/usr/bin/env bash
# Extends a Samba AD forest's schema with mydoc's attribute and class: applies ../mydoc-schema.ldif
# (the same file Windows administrators import with ldifde), with the OID arc and the schema's DN
# filled in. Run once per forest, on the schema master. See ../README.md.
#
#   extend-schema.sh [-H URL] OID_ARC [-- SAMBA_OPTIONS...]
#
#   OID_ARC   your organisation's arc for mydoc, e.g. 1.2.840.113556.1.8000.2554.<7 numbers>
#             (the README says how to get one); the attribute gets OID_ARC.1.1, the class OID_ARC.2.1
#   -H URL    the DC's database: default /var/lib/samba/private/sam.ldb (on the DC, as root), or
#             ldap://dc.example (then the DC's smb.conf needs `dsdb:schema update allowed = true`)
#
# Security: schema changes cannot be undone (only deactivated). Credentials as in common.sh: never
# on the command line.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
. "$here/common.sh"

arc=
while (($# > 0)); do
  case $1 in
    -H) (($# >= 2)) || die "-H needs a URL"; SAMBA_URL=$2; shift 2 ;;
    --) shift; SAMBA_OPTS=("$@"); break ;;
    -*) die "unknown option $1 (usage: extend-schema.sh [-H URL] OID_ARC [-- SAMBA_OPTIONS...])" ;;
    *) [[ -z $arc ]] || die "one OID arc only"; arc=$1; shift ;;
  esac
done
[[ -n $arc ]] || die "usage: extend-schema.sh [-H URL] OID_ARC [-- SAMBA_OPTIONS...]"
[[ $arc =~ ^[0-2](\.(0|[1-9][0-9]*))+$ ]] || die "\"$arc\" is not an OID arc (numbers separated by dots, e.g. 1.2.840.113556.1.8000.2554.…)"
[[ $arc != 1.3.6.1.4.1.99999* ]] || die "$arc is a placeholder arc, not your organisation's: see the README for how to get one"

naming_contexts
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sed -e "s/MYDOC-OID-ARC/$arc/g" -e "s/CN=Schema,CN=Configuration,DC=X/$SCHEMA_DN/g" "$here/../mydoc-schema.ldif" >"$work/schema.ldif"
# One ldbmodify per record: a schema object added in the same transaction as the class that
# names it is not yet known to the schema, even after schemaUpdateNow.
awk -v dir="$work" 'BEGIN { RS = "" } !/^(#[^\n]*(\n|$))*$/ { n++; f = sprintf("%s/record-%02d.ldif", dir, n); print $0 > f; close(f) }' "$work/schema.ldif"
for record in "$work"/record-*.ldif; do
  ldbmodify -H "$SAMBA_URL" "${SAMBA_OPTS[@]}" --option='dsdb:schema update allowed=true' "$record" >/dev/null ||
    die "ldbmodify failed on $(grep -m1 '^dn:' "$record") (already extended? see the README)"
done
printf 'mydocNetworkSecret (%s.1.1) and mydocPcUserKey (%s.2.1) added to %s\n' "$arc" "$arc" "$SCHEMA_DN"
