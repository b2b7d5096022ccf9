#!/usr/bin/env bash
# Revokes a mydoc PC in a Samba AD domain (the twin of ../Remove-MydocPc.ps1): clears every
# user's K_dir in its key container OU=<pcId>, then deletes the container with the key objects
# in it, so the PC can no longer open any vault
# (its next unlock says the PC was revoked), and disables its service account svc-<pcId>, whose
# password is on the PC. See ../README.md.
#
#   remove-pc.sh [-H URL] [--keys-ou RDN] [--keep-account | --delete-account] PCID [-- SAMBA_OPTIONS...]
#
#   --keys-ou         the keys OU, relative to the domain (default OU=mydoc-keys)
#   --keep-account    leave the account enabled (e.g. to enrol the PC's users again from scratch)
#   --delete-account  delete the account instead of disabling it (e.g. before add-pc.sh again)
#
# Security: deleting the secrets is what revokes; it cannot be undone (the secrets are random,
# and a new enrolment creates new ones; the PC's vaults stay closed until then). They are cleared
# before the objects are deleted: with the Recycle Bin on, deleted objects keep their attributes
# for the deleted-object lifetime, where administrators could read and restore them.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
. "$here/common.sh"

usage="usage: remove-pc.sh [-H URL] [--keys-ou RDN] [--keep-account | --delete-account] PCID [-- SAMBA_OPTIONS...]"
keys_ou=OU=mydoc-keys
account_action=disable
pc=
while (($# > 0)); do
  case $1 in
    -H | --keys-ou) (($# >= 2)) || die "$1 needs a value"; ;;&
    -H) SAMBA_URL=$2; shift 2 ;;
    --keys-ou) keys_ou=$2; shift 2 ;;
    --keep-account) account_action=keep; shift ;;
    --delete-account) account_action=delete; shift ;;
    --) shift; SAMBA_OPTS=("$@"); break ;;
    -*) die "unknown option $1 ($usage)" ;;
    *) [[ -z $pc ]] || die "one PC at a time ($usage)"; check_pc_id "$1"; pc=$1; shift ;;
  esac
done
[[ -n $pc ]] || die "$usage"

naming_contexts
container_dn="OU=$pc,$keys_ou,$DOMAIN_DN"
account=svc-$pc
if ldbsearch -H "$SAMBA_URL" "${SAMBA_OPTS[@]}" -b "$container_dn" -s base '(objectClass=*)' dn >/dev/null 2>&1; then
  while IFS= read -r key_dn; do
    printf 'dn: %s\nchangetype: modify\ndelete: mydocNetworkSecret\n-\n' "$key_dn" | ldbmodify -H "$SAMBA_URL" "${SAMBA_OPTS[@]}" >/dev/null ||
      die "could not clear the secret of $key_dn: nothing deleted"
  done < <(search_values "$container_dn" one '(&(objectClass=mydocPcUserKey)(mydocNetworkSecret=*))' dn)
  tool ou delete "OU=$pc,$keys_ou" --force-subtree-delete >/dev/null
  printf '%s: deleted %s and the keys in it\n' "$pc" "$container_dn"
else
  printf '%s: no container %s (already revoked?)\n' "$pc" "$container_dn"
fi
if [[ -z $(search_values "$DOMAIN_DN" sub "(sAMAccountName=$account)" dn) ]]; then
  printf '%s: no account %s\n' "$pc" "$account"
  exit 0
fi
case $account_action in
  disable) tool user disable "$account" >/dev/null; printf '%s: disabled %s\n' "$pc" "$account" ;;
  delete) tool user delete "$account" >/dev/null; printf '%s: deleted %s\n' "$pc" "$account" ;;
  keep) printf '%s: %s left enabled\n' "$pc" "$account" ;;
esac
