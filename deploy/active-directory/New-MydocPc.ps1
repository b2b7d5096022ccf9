<#
.SYNOPSIS
Creates what a mydoc PC needs in Active Directory: its service account, its key container and the
ACEs on it. The Samba AD twin is samba/add-pc.sh. See README.md.

.DESCRIPTION
For each PC (-PcId, or every row of -CsvPath with a PcId column):
  - the user svc-<pcId> in -ServicesOu, with a 40-character random password from
    RandomNumberGenerator (never expires, cannot be changed by the account), written to
    <OutDir>\<pcId>.password, a file only the administrator running this script can read;
    carry it to the PC as directory.ldap.servicePasswordFile (mode 0600 there);
  - the container OU=<pcId> in -KeysOu (protected from accidental deletion; Remove-MydocPc.ps1
    lifts the protection before it deletes), where the agent keeps one mydocPcUserKey per user;
  - on that container, for that account only: read and list the container; create and delete
    mydocPcUserKey objects; on those objects (inherited): read them, and write plus the
    control-access right (what reading a CONFIDENTIAL attribute needs) on mydocNetworkSecret.
Nobody else gets control access on the secret; Domain Admins (and Enterprise Admins, builtin
Administrators) can still read it, as they can LAPS passwords and BitLocker recovery keys.

Needs the ActiveDirectory module (RSAT) and rights to create users and OUs and to change their
permissions; the schema must have been extended first (mydoc-schema.ldif).
An existing account, container or password file is never touched: that PC is refused and the
others go on. Not run in mydoc's own test suite (no PowerShell there; its Samba twin is).

.EXAMPLE
.\New-MydocPc.ps1 -PcId pc1 -OutDir C:\mydoc-passwords
.EXAMPLE
.\New-MydocPc.ps1 -CsvPath .\pcs.csv -OutDir C:\mydoc-passwords
#>
[CmdletBinding(DefaultParameterSetName = 'One')]
param(
    [Parameter(Mandatory, ParameterSetName = 'One')][string]$PcId,
    [Parameter(Mandatory, ParameterSetName = 'Csv')][string]$CsvPath,
    # Relative to the domain; created when missing if it is a single OU=name.
    [string]$KeysOu = 'OU=mydoc-keys',
    [string]$ServicesOu = 'OU=mydoc-services',
    [string]$OutDir = '.'
)
Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'
Import-Module ActiveDirectory
# One DC for every call (the PDC emulator), so that an object just created is there for the next step.
$server = (Get-ADDomain).PDCEmulator
$PSDefaultParameterValues = @{ '*-AD*:Server' = $server }

$domain = Get-ADDomain
$domainDn = $domain.DistinguishedName
$schemaDn = (Get-ADRootDSE).schemaNamingContext
$outDirPath = (Resolve-Path -LiteralPath $OutDir).Path

function Get-SchemaGuid([string]$Name) {
    $o = Get-ADObject -SearchBase $schemaDn -SearchScope OneLevel -LDAPFilter "(lDAPDisplayName=$Name)" -Properties schemaIDGUID
    if (-not $o) { throw "$Name is not in the schema: import mydoc-schema.ldif first (README.md)" }
    [Guid]$o.schemaIDGUID
}

function Test-Dn([string]$Dn) {
    try { $null = Get-ADObject -Identity $Dn; $true } catch [Microsoft.ActiveDirectory.Management.ADIdentityNotFoundException] { $false }
}

# 40 characters of A-Z a-z 0-9 - _ (240 bits), with upper and lower case and a digit (AD's complexity rule).
function New-Password {
    $bytes = New-Object byte[] 30
    $rng = [System.Security.Cryptography.RandomNumberGenerator]::Create()
    try {
        do {
            $rng.GetBytes($bytes)
            $p = [Convert]::ToBase64String($bytes).Replace('+', '-').Replace('/', '_')
        } until ($p -cmatch '[A-Z]' -and $p -cmatch '[a-z]' -and $p -match '[0-9]')
    } finally { $rng.Dispose() }
    $p
}

# A new file that only the current user can read (no inherited ACEs), holding $Text.
function New-PrivateFile([string]$Path, [string]$Text) {
    $null = New-Item -ItemType File -Path $Path
    $me = [System.Security.Principal.WindowsIdentity]::GetCurrent().User
    $acl = New-Object System.Security.AccessControl.FileSecurity
    $acl.SetAccessRuleProtection($true, $false)
    $acl.AddAccessRule((New-Object System.Security.AccessControl.FileSystemAccessRule($me, 'FullControl', 'Allow')))
    Set-Acl -LiteralPath $Path -AclObject $acl
    [System.IO.File]::WriteAllText($Path, "$Text`n")
}

$pcIds = if ($PSCmdlet.ParameterSetName -eq 'Csv') { @(Import-Csv -LiteralPath $CsvPath | ForEach-Object { $_.PcId }) } else { @($PcId) }
foreach ($pc in $pcIds) {
    # mydoc's pcId characters; at most 16 so that svc-<pcId> fits sAMAccountName's 20.
    if ($pc -notmatch '^[A-Za-z0-9._-]{1,16}$' -or $pc.EndsWith('.')) {
        throw "PC id `"$pc`": use 1 to 16 of A-Z a-z 0-9 . _ - (not ending in a dot)"
    }
}

$classGuid = Get-SchemaGuid 'mydocPcUserKey'
$secretGuid = Get-SchemaGuid 'mydocNetworkSecret'
foreach ($ou in @($KeysOu, $ServicesOu)) {
    if (-not (Test-Dn "$ou,$domainDn")) {
        if ($ou -notmatch '^OU=([^,=]+)$') { throw "$ou,$domainDn does not exist: create it first" }
        New-ADOrganizationalUnit -Name $Matches[1] -Path $domainDn -ProtectedFromAccidentalDeletion $true
    }
}

# The ACLs are set through a drive on the same DC.
$null = New-PSDrive -Name MydocAD -PSProvider ActiveDirectory -Root '//RootDSE/' -Server $server -Scope Script
$R = [System.DirectoryServices.ActiveDirectoryRights]
$thisObject = [System.DirectoryServices.ActiveDirectorySecurityInheritance]::None
$children = [System.DirectoryServices.ActiveDirectorySecurityInheritance]::Descendents
$read = $R::ReadProperty -bor $R::ListChildren -bor $R::ListObject -bor $R::ReadControl

foreach ($pc in $pcIds) {
    $account = "svc-$pc"
    $containerDn = "OU=$pc,$KeysOu,$domainDn"
    $passwordFile = Join-Path $outDirPath "$pc.password"
    if (Get-ADUser -Filter "sAMAccountName -eq '$account'") { Write-Error "${account} already exists: nothing done for $pc" -ErrorAction Continue; continue }
    if (Test-Dn $containerDn) { Write-Error "$containerDn already exists: nothing done for $pc" -ErrorAction Continue; continue }
    if (Test-Path -LiteralPath $passwordFile) { Write-Error "$passwordFile already exists: nothing done for $pc" -ErrorAction Continue; continue }

    $password = New-Password
    New-PrivateFile $passwordFile $password
    New-ADUser -Name $account -SamAccountName $account -UserPrincipalName "$account@$($domain.DNSRoot)" `
        -Path "$ServicesOu,$domainDn" -Description "mydoc service account of PC $pc" `
        -AccountPassword (ConvertTo-SecureString -String $password -AsPlainText -Force) `
        -Enabled $true -PasswordNeverExpires $true -CannotChangePassword $true
    $password = $null
    $sid = (Get-ADUser -Identity $account).SID
    New-ADOrganizationalUnit -Name $pc -Path "$KeysOu,$domainDn" -Description "mydoc keys of PC $pc" -ProtectedFromAccidentalDeletion $true

    $path = "MydocAD:\$containerDn"
    $acl = Get-Acl -Path $path
    # Read and list the container itself.
    $acl.AddAccessRule((New-Object System.DirectoryServices.ActiveDirectoryAccessRule($sid, $read, 'Allow', $thisObject)))
    # Create and delete key objects (that class only) in it.
    $acl.AddAccessRule((New-Object System.DirectoryServices.ActiveDirectoryAccessRule($sid, ($R::CreateChild -bor $R::DeleteChild), 'Allow', $classGuid, $thisObject)))
    # On key objects: read them ...
    $acl.AddAccessRule((New-Object System.DirectoryServices.ActiveDirectoryAccessRule($sid, $read, 'Allow', $children, $classGuid)))
    # ... and write the secret, plus control access on it: reading a confidential attribute needs it.
    $acl.AddAccessRule((New-Object System.DirectoryServices.ActiveDirectoryAccessRule($sid, ($R::WriteProperty -bor $R::ExtendedRight), 'Allow', $secretGuid, $children, $classGuid)))
    Set-Acl -Path $path -AclObject $acl
    Write-Output "${pc}: account CN=$account,$ServicesOu,$domainDn, container $containerDn, password in $passwordFile"
}
