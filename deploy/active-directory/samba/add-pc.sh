#!/usr/bin/env bash
# Creates what one mydoc PC needs in a Samba AD domain (the twin of ../New-MydocPc.ps1):
#   - its service account svc-<pcId> in the services OU, with a long random password (never
#     expires) written to OUT_DIR/<pcId>.password (mode 0600), which the administrator carries to
#     the PC as directory.ldap.servicePasswordFile;
#   - its key container OU=<pcId> in the keys OU, where the agent keeps one mydocPcUserKey object
#     per enrolled user;
#   - the ACEs on that container giving that account alone: read and list the container, create
#     and delete key objects in it, read the key objects, and write and read their confidential
#     mydocNetworkSecret (read needs the control-access right on it, which nobody else is given).
# See ../README.md.
#
#   add-pc.sh [-H URL] [--keys-ou RDN] [--services-ou RDN] [--out-dir DIR] PCID... [-- SAMBA_OPTIONS...]
#
#   --keys-ou      the keys OU, relative to the domain (default OU=mydoc-keys); created if missing
#   --services-ou  where the accounts go (default OU=mydoc-services); created if missing
#   --out-dir      where the password files go (default: the current folder)
#
# Security: the new password is generated here from /dev/urandom and only ever passes through a
# pipe (to ldbmodify) and the 0600 file: never a command line or the environment. Credentials of
# the administrator as in common.sh. An existing account or container is never touched: the
# script stops (remove-pc.sh --delete-account PCID starts over).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
. "$here/common.sh"

usage="usage: add-pc.sh [-H URL] [--keys-ou RDN] [--services-ou RDN] [--out-dir DIR] PCID... [-- SAMBA_OPTIONS...]"
keys_ou=OU=mydoc-keys
services_ou=OU=mydoc-services
out_dir=.
pc_ids=()
while (($# > 0)); do
  case $1 in
    -H | --keys-ou | --services-ou | --out-dir) (($# >= 2)) || die "$1 needs a value"; ;;&
    -H) SAMBA_URL=$2; shift 2 ;;
    --keys-ou) keys_ou=$2; shift 2 ;;
    --services-ou) services_ou=$2; shift 2 ;;
    --out-dir) out_dir=$2; shift 2 ;;
    --) shift; SAMBA_OPTS=("$@"); break ;;
    -*) die "unknown option $1 ($usage)" ;;
    *) check_pc_id "$1"; pc_ids+=("$1"); shift ;;
  esac
done
((${#pc_ids[@]} > 0)) || die "$usage"
[[ -d $out_dir && -w $out_dir ]] || die "--out-dir $out_dir is not a writable folder"

exists() {
  ldbsearch -H "$SAMBA_URL" "${SAMBA_OPTS[@]}" -b "$1" -s base '(objectClass=*)' dn >/dev/null 2>&1
}

# A random password of 40 characters from A-Z a-z 0-9 - _ (240 bits), with upper case, lower
# case and a digit so that it meets AD's complexity rule.
new_password() {
  local pw
  while :; do
    pw=$(head -c 30 /dev/urandom | base64 | tr '+/' '-_')
    [[ $pw =~ [A-Z] && $pw =~ [a-z] && $pw =~ [0-9] ]] && break
  done
  printf '%s' "$pw"
}

naming_contexts
class_guid=$(schema_guid mydocPcUserKey)
secret_guid=$(schema_guid mydocNetworkSecret)
for ou in "$keys_ou" "$services_ou"; do
  exists "$ou,$DOMAIN_DN" || tool ou add "$ou" >/dev/null
done

for pc in "${pc_ids[@]}"; do
  account=svc-$pc
  account_dn="CN=$account,$services_ou,$DOMAIN_DN"
  container_dn="OU=$pc,$keys_ou,$DOMAIN_DN"
  password_file="$out_dir/$pc.password"
  [[ -n $(search_values "$DOMAIN_DN" sub "(sAMAccountName=$account)" dn) ]] && die "$account already exists: nothing done for $pc (remove-pc.sh --delete-account $pc starts over)"
  exists "$container_dn" && die "$container_dn already exists: nothing done for $pc"
  [[ -e $password_file ]] && die "$password_file already exists: nothing done for $pc"

  password=$(new_password)
  (umask 077 && set -o noclobber && printf '%s\n' "$password" >"$password_file.new")
  tool user create "$account" --random-password "--userou=$services_ou" "--description=mydoc service account of PC $pc" >/dev/null
  tool user setexpiry "$account" --noexpiry >/dev/null
  # unicodePwd is the password in double quotes, UTF-16LE, base64 in LDIF; it reaches ldbmodify on stdin.
  printf 'dn: %s\nchangetype: modify\nreplace: unicodePwd\nunicodePwd:: %s\n-\n' "$account_dn" \
    "$(printf '"%s"' "$password" | iconv -f UTF-8 -t UTF-16LE | base64 -w0)" |
    ldbmodify -H "$SAMBA_URL" "${SAMBA_OPTS[@]}" >/dev/null || die "could not set the password of $account"
  mv "$password_file.new" "$password_file"

  sid=$(search_values "$account_dn" base '(objectClass=*)' objectSid)
  [[ $sid =~ ^S-1-5-21-[0-9-]+$ ]] || die "no objectSid for $account_dn"
  tool ou add "OU=$pc,$keys_ou" "--description=mydoc keys of PC $pc" >/dev/null
  # Read and list the container; create and delete key objects in it; on key objects (inherited,
  # not on the container itself): read them, and write plus control-access (the read right of a
  # confidential attribute) on the secret.
  sddl="(A;;RPLCLORC;;;$sid)(OA;;CCDC;$class_guid;;$sid)(OA;CIIO;RPLCLORC;;$class_guid;$sid)(OA;CIIO;WPCR;$secret_guid;$class_guid;$sid)"
  tool dsacl set "--objectdn=$container_dn" "--sddl=$sddl" >/dev/null
  printf '%s: account %s, container %s, password in %s\n' "$pc" "$account_dn" "$container_dn" "$password_file"
done
