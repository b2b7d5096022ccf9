# shellcheck shell=bash
# Shared by extend-schema.sh, add-pc.sh and remove-pc.sh (sourced, not run): option parsing and
# the samba-tool / ldb-tools calls against one Samba AD DC.
#
# Security: the administrator's password never goes on a command line (other users see those in
# ps). Run on the DC as root against the local database (the default -H), or pass credentials the
# way Samba's tools read them: -U NAME with the password in $PASSWD or a file named by
# $PASSWD_FILE, or -A AUTHFILE, among the Samba options after `--`.

# The default database: the DC's own, as Debian installs it (local access needs root, no password).
SAMBA_URL=/var/lib/samba/private/sam.ldb
# Options given after `--`, passed to every samba-tool and ldb* call (e.g. --configfile=FILE -U Administrator).
SAMBA_OPTS=()

die() {
  printf '%s: %s\n' "${0##*/}" "$*" >&2
  exit 1
}

# samba-tool against the DC, e.g. `tool user show svc-pc1`.
tool() {
  samba-tool "$@" -H "$SAMBA_URL" "${SAMBA_OPTS[@]}"
}

# ldbsearch printing one attribute's values, one a line (LDIF folding undone), e.g.
# `search_values BASE SCOPE FILTER ATTR`.
search_values() {
  local base=$1 scope=$2 filter=$3 attr=$4
  ldbsearch -H "$SAMBA_URL" "${SAMBA_OPTS[@]}" -b "$base" -s "$scope" "$filter" "$attr" |
    awk -v a="$attr" '
      /^ / { if (v != "") v = v substr($0, 2); next }
      { if (v != "") print v; v = "" }
      tolower($0) ~ "^" tolower(a) ": " { v = substr($0, length(a) + 3) }
      END { if (v != "") print v }'
}

# The domain's DN and its schema's DN, from the rootDSE.
naming_contexts() {
  DOMAIN_DN=$(search_values '' base '(objectClass=*)' defaultNamingContext)
  SCHEMA_DN=$(search_values '' base '(objectClass=*)' schemaNamingContext)
  [[ -n $DOMAIN_DN && -n $SCHEMA_DN ]] || die "cannot read the naming contexts from $SAMBA_URL (is it a Samba AD DC, and are the credentials right?)"
}

# The schemaIDGUID of a schema object by lDAPDisplayName; fails if the schema was not extended.
schema_guid() {
  local guid
  guid=$(search_values "$SCHEMA_DN" one "(lDAPDisplayName=$1)" schemaIDGUID)
  [[ $guid =~ ^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$ ]] || die "$1 is not in the schema: run extend-schema.sh first"
  printf '%s\n' "$guid"
}

# A PC id as mydoc's pcId allows (A-Z a-z 0-9 . _ -), short enough for the account name
# svc-<pcId>: AD's sAMAccountName has at most 20 characters.
check_pc_id() {
  [[ $1 =~ ^[A-Za-z0-9._-]{1,16}$ && $1 != *. ]] ||
    die "PC id \"$1\": use 1 to 16 of A-Z a-z 0-9 . _ - (not ending in a dot), so that svc-<pcId> fits AD's 20-character account names"
}
