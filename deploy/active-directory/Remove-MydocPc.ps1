<#
.SYNOPSIS
Revokes a mydoc PC in Active Directory: clears and deletes its key container OU=<pcId> (every
user's K_dir on that PC), and disables its service account svc-<pcId>. The Samba AD twin is
samba/remove-pc.sh. See README.md.

.DESCRIPTION
Each key object's mydocNetworkSecret is deleted first, then the container (its protection from
accidental deletion lifted) with everything in it: with the AD Recycle Bin on, deleted objects
keep their attributes for the deleted-object lifetime, so a secret deleted only with its object
could be read there by administrators and restored. The PC's next unlock then says it was
revoked. The account is disabled (its password is on the lost PC) unless -KeepAccount, or
deleted with -DeleteAccount. Cannot be undone: the secrets are random; the PC's users must be
enrolled again on a new container (New-MydocPc.ps1 after -DeleteAccount).
Not run in mydoc's own test suite (no PowerShell there; its Samba twin is).

.EXAMPLE
.\Remove-MydocPc.ps1 -PcId pc1
#>
param(
    [Parameter(Mandatory)][ValidatePattern('^[A-Za-z0-9._-]{1,16}$')][string]$PcId,
    [string]$KeysOu = 'OU=mydoc-keys',
    [switch]$KeepAccount,
    [switch]$DeleteAccount
)
Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'
Import-Module ActiveDirectory
# One DC for every call (the PDC emulator), so that an object just created is there for the next step.
$server = (Get-ADDomain).PDCEmulator
$PSDefaultParameterValues = @{ '*-AD*:Server' = $server }

$domainDn = (Get-ADDomain).DistinguishedName
$containerDn = "OU=$PcId,$KeysOu,$domainDn"
$account = "svc-$PcId"

$exists = try { $null = Get-ADObject -Identity $containerDn; $true } catch [Microsoft.ActiveDirectory.Management.ADIdentityNotFoundException] { $false }
if ($exists) {
    Get-ADObject -SearchBase $containerDn -SearchScope OneLevel -LDAPFilter '(&(objectClass=mydocPcUserKey)(mydocNetworkSecret=*))' |
        ForEach-Object { Set-ADObject -Identity $_ -Clear mydocNetworkSecret }
    Set-ADOrganizationalUnit -Identity $containerDn -ProtectedFromAccidentalDeletion $false
    Remove-ADOrganizationalUnit -Identity $containerDn -Recursive -Confirm:$false
    Write-Output "${PcId}: deleted $containerDn and the keys in it"
} else {
    Write-Output "${PcId}: no container $containerDn (already revoked?)"
}

$user = Get-ADUser -Filter "sAMAccountName -eq '$account'"
if (-not $user) { Write-Output "${PcId}: no account $account" }
elseif ($DeleteAccount) { Remove-ADUser -Identity $user -Confirm:$false; Write-Output "${PcId}: deleted $account" }
elseif ($KeepAccount) { Write-Output "${PcId}: $account left enabled" }
else { Disable-ADAccount -Identity $user; Write-Output "${PcId}: disabled $account" }
