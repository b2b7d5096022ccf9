#Requires -Version 5.1
#Requires -RunAsAdministrator
<#
.SYNOPSIS
    Connects this Windows guest to its mydoc service: trusts the service's CA, tunes the
    WebDAV client (WebClient service), maps the drive and redirects Documents and Desktop to it.

.DESCRIPTION
    Run it once per user, from an elevated PowerShell 5.1 window opened by THAT user
    (right-click > Run as administrator, same account). Machine-wide steps:
      1. Imports the mydoc CA certificate into Cert:\LocalMachine\Root.
      2. Sets the WebClient service to start automatically.
      3. Sets HKLM\SYSTEM\CurrentControlSet\Services\WebClient\Parameters:
           FileSizeLimitInBytes       = 0xFFFFFFFF (4 GiB - 1, the client's ceiling; default 50 MB)
           FileAttributesLimitInBytes = 50,000,000  (max PROPFIND answer; default 1,000,000)
           FsCtlRequestTimeoutInSec   = 3600        (long uploads; default 1800)
           BasicAuthLevel             = 1           (Basic authentication over HTTPS only)
         and FsCtlRequestTimeoutInSec = 3600 under ...\Services\MRxDAV\Parameters too
         (where Microsoft KB2668751 documents it).
    Per-user steps (they apply to the account that runs the script):
      4. Turns off proxy auto-detection (WPAD, "Automatically detect settings") and adds the
         service host to the proxy bypass list (ProxyOverride).
      5. Restarts WebClient, maps the drive with "net use" (persistent; asks for the password).
      6. Redirects Documents and Desktop to <drive>:\Documents and <drive>:\Desktop.
    Before changing anything it exports the affected registry keys to
    %LOCALAPPDATA%\MyDoc\guest-kit-backup\<time>\ (see README.md, "Undo").

.PARAMETER Server
    host:port of the mydoc service, e.g. 10.0.2.2:8443 or mydoc.corp.example:8443. The host
    must be one of the names in the service's TLS certificate (listen.hostNames).

.PARAMETER CaFile
    The service's CA certificate (<dataDir>/tls/ca-cert.pem on the service VM), PEM or DER.

.PARAMETER DriveLetter
    Drive letter to map, default Z.

.PARAMETER User
    mydoc user name, default the Windows user name.

.EXAMPLE
    powershell -ExecutionPolicy Bypass -File .\Install-MyDoc.ps1 -Server 10.0.2.2:8443 -CaFile .\ca-cert.pem -DriveLetter Z -User alice
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory = $true)]
    [ValidatePattern('^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?:[0-9]{1,5}$')]
    [string] $Server,

    [Parameter(Mandatory = $true)]
    [ValidateNotNullOrEmpty()]
    [string] $CaFile,

    [ValidatePattern('^[D-Zd-z]:?$')]
    [string] $DriveLetter = 'Z',

    [ValidateNotNullOrEmpty()]
    [string] $User = $env:USERNAME
)

Set-StrictMode -Version 2.0
$ErrorActionPreference = 'Stop'

# ---------------------------------------------------------------------------------------------
# Constants
# ---------------------------------------------------------------------------------------------
$WebClientKey = 'HKLM:\SYSTEM\CurrentControlSet\Services\WebClient\Parameters'
$MrxDavKey = 'HKLM:\SYSTEM\CurrentControlSet\Services\MRxDAV\Parameters'
$InternetSettingsKey = 'HKCU:\Software\Microsoft\Windows\CurrentVersion\Internet Settings'
$ConnectionsKey = 'HKCU:\Software\Microsoft\Windows\CurrentVersion\Internet Settings\Connections'
$UserShellFoldersKey = 'HKCU:\Software\Microsoft\Windows\CurrentVersion\Explorer\User Shell Folders'
# Known-folder value names Explorer keeps beside the legacy names (Windows 10/11).
$LocalDocumentsGuid = '{F42EE2D3-909F-4907-8871-4C22FC0BF756}'
$LocalDesktopGuid = '{754AC886-DF64-4CBA-86B5-F7FBF4FBCEF5}'

$FileSizeLimitInBytes = [uint32]::MaxValue   # 0xFFFFFFFF. NB: the literal 0xFFFFFFFF is Int32 -1 in PowerShell 5.1.
$FileAttributesLimitInBytes = [uint32]50000000  # 0x02FAF080
$FsCtlRequestTimeoutInSec = [uint32]3600     # 0x00000E10
$BasicAuthLevel = [uint32]1                  # 0 = no Basic, 1 = Basic over HTTPS only, 2 = also over HTTP

$script:Done = New-Object System.Collections.Generic.List[string]

function Write-Step([string] $Text) {
    Write-Host ''
    Write-Host "== $Text" -ForegroundColor Cyan
}

function Write-Done([string] $Text) {
    Write-Host "   done: $Text" -ForegroundColor Green
    $script:Done.Add($Text)
}

function Write-Note([string] $Text) {
    Write-Host "   note: $Text" -ForegroundColor Yellow
}

# Reads a registry value without expanding %VARIABLES%; $null when the key or value is absent.
function Get-RawRegistryValue([string] $Key, [string] $Name) {
    $item = Get-Item -LiteralPath $Key -ErrorAction SilentlyContinue
    if ($null -eq $item) { return $null }
    $value = $item.GetValue($Name, $null, [Microsoft.Win32.RegistryValueOptions]::DoNotExpandEnvironmentNames)
    if ($null -eq $value) { return $null }
    # The comma keeps a REG_BINARY byte[] (or REG_MULTI_SZ string[]) whole: PowerShell would unroll it.
    if ($value -is [array]) { return , $value }
    return $value
}

function Initialize-RegistryKey([string] $Key) {
    if (-not (Test-Path -LiteralPath $Key)) {
        New-Item -Path $Key -Force | Out-Null
    }
}

# Writes a REG_DWORD. The registry provider takes a DWORD as a signed Int32, so the unsigned
# value is reinterpreted bit for bit (4294967295 is written as -1, which is 0xFFFFFFFF).
function Set-DwordValue([string] $Key, [string] $Name, [uint32] $Value) {
    Initialize-RegistryKey $Key
    $old = Get-RawRegistryValue $Key $Name
    $signed = [BitConverter]::ToInt32([BitConverter]::GetBytes($Value), 0)
    New-ItemProperty -LiteralPath $Key -Name $Name -PropertyType DWord -Value $signed -Force | Out-Null
    $back = [BitConverter]::ToUInt32([BitConverter]::GetBytes([int32](Get-RawRegistryValue $Key $Name)), 0)
    if ($back -ne $Value) {
        throw ("{0}\{1}: wrote 0x{2:X8} but read back 0x{3:X8}" -f $Key, $Name, $Value, $back)
    }
    $oldText = 'absent'
    if ($old -is [int]) {
        $oldText = '0x{0:X8}' -f [BitConverter]::ToUInt32([BitConverter]::GetBytes([int32]$old), 0)
    } elseif ($null -ne $old) {
        $oldText = "$old (was not a DWORD)"
    }
    Write-Done ("{0}\{1} = 0x{2:X8} ({2}); was {3}" -f $Key, $Name, $Value, $oldText)
}

# Writes a REG_EXPAND_SZ (the type Explorer uses for User Shell Folders).
function Set-ExpandStringValue([string] $Key, [string] $Name, [string] $Value) {
    Initialize-RegistryKey $Key
    $old = Get-RawRegistryValue $Key $Name
    New-ItemProperty -LiteralPath $Key -Name $Name -PropertyType ExpandString -Value $Value -Force | Out-Null
    $oldText = 'absent'
    if ($null -ne $old) { $oldText = [string]$old }
    Write-Done ("{0}\{1} = {2}; was {3}" -f $Key, $Name, $Value, $oldText)
}

# Reads the first certificate of a PEM file (or a DER file) into an X509Certificate2.
function Read-CaCertificate([string] $Path) {
    if (-not (Test-Path -LiteralPath $Path -PathType Leaf)) {
        throw "CA file not found: $Path"
    }
    $full = (Resolve-Path -LiteralPath $Path).ProviderPath
    $bytes = [System.IO.File]::ReadAllBytes($full)
    $text = [System.Text.Encoding]::ASCII.GetString($bytes)
    $pattern = '-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----'
    $found = [regex]::Matches($text, $pattern)
    if ($found.Count -gt 0) {
        if ($found.Count -gt 1) {
            Write-Note "$full holds $($found.Count) certificates; only the first (the mydoc CA) is imported."
        }
        $der = [Convert]::FromBase64String(($found[0].Groups[1].Value -replace '\s', ''))
    } else {
        $der = $bytes
    }
    $cert = [System.Security.Cryptography.X509Certificates.X509Certificate2]::new([byte[]]$der)

    $isCa = $false
    foreach ($ext in $cert.Extensions) {
        if ($ext.Oid.Value -eq '2.5.29.19') {
            $bc = [System.Security.Cryptography.X509Certificates.X509BasicConstraintsExtension]::new($ext, $ext.Critical)
            $isCa = $bc.CertificateAuthority
        }
    }
    if (-not $isCa) {
        throw "$full is not a CA certificate (basicConstraints CA:TRUE missing). Use <dataDir>/tls/ca-cert.pem, not the server certificate."
    }
    if ($cert.Subject -ne $cert.Issuer) {
        Write-Note "the CA certificate is not self-signed (issuer: $($cert.Issuer)); Windows will also need its issuer."
    }
    return $cert
}

# ---------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------
$principal = New-Object System.Security.Principal.WindowsPrincipal([System.Security.Principal.WindowsIdentity]::GetCurrent())
if (-not $principal.IsInRole([System.Security.Principal.WindowsBuiltInRole]::Administrator)) {
    throw 'Run this script from an elevated PowerShell (Run as administrator).'
}

$parts = $Server.Split(':')
$HostName = $parts[0]
$Port = [int]$parts[1]
if ($Port -lt 1 -or $Port -gt 65535) {
    throw "-Server: port must be 1 to 65535 (got $Port)"
}
$Drive = $DriveLetter.TrimEnd(':').ToUpperInvariant() + ':'
$Url = 'https://' + $HostName + ':' + $Port + '/'
# How Windows records the mapping in HKCU\Network\<letter>\RemotePath.
$UncRoot = '\\' + $HostName + '@SSL@' + $Port + '\DavWWWRoot'

# HKCU is the hive of the account running this script. When UAC elevation used another
# (administrator) account, the per-user steps would land in that account: warn.
$runningAs = [System.Security.Principal.WindowsIdentity]::GetCurrent().Name
$consoleUser = $null
try { $consoleUser = (Get-CimInstance -ClassName Win32_ComputerSystem).UserName } catch { $consoleUser = $null }
if ($null -ne $consoleUser -and $consoleUser -ne '' -and $consoleUser -ne $runningAs) {
    Write-Note "this script runs as $runningAs but $consoleUser is signed in at the console."
    Write-Note "proxy, drive and folder settings go to $runningAs. Run it elevated from the user's own account instead."
}

Write-Host "mydoc guest kit: server $Url, drive $Drive, mydoc user $User, Windows account $runningAs"

# ---------------------------------------------------------------------------------------------
# 0. Backup of every key this script touches
# ---------------------------------------------------------------------------------------------
Write-Step 'Backing up the registry keys this script changes'
$BackupDir = Join-Path $env:LOCALAPPDATA ('MyDoc\guest-kit-backup\' + (Get-Date -Format 'yyyyMMdd-HHmmss'))
New-Item -ItemType Directory -Path $BackupDir -Force | Out-Null
$exports = @(
    @('HKLM\SYSTEM\CurrentControlSet\Services\WebClient', 'webclient-service.reg'),
    @('HKLM\SYSTEM\CurrentControlSet\Services\MRxDAV', 'mrxdav-service.reg'),
    @('HKCU\Software\Microsoft\Windows\CurrentVersion\Internet Settings', 'internet-settings.reg'),
    @('HKCU\Software\Microsoft\Windows\CurrentVersion\Explorer\User Shell Folders', 'user-shell-folders.reg')
)
foreach ($e in $exports) {
    $file = Join-Path $BackupDir $e[1]
    & reg.exe export $e[0] $file /y | Out-Null
    if ($LASTEXITCODE -eq 0) {
        Write-Done "exported $($e[0]) to $file"
    } else {
        Write-Note "could not export $($e[0]) (reg.exe exit $LASTEXITCODE); the key may not exist yet."
    }
}

# ---------------------------------------------------------------------------------------------
# 1. Trust the mydoc CA (machine-wide, so the WebClient service trusts it too)
# ---------------------------------------------------------------------------------------------
Write-Step 'Trusting the mydoc CA in Cert:\LocalMachine\Root'
$Ca = Read-CaCertificate $CaFile
$store = [System.Security.Cryptography.X509Certificates.X509Store]::new(
    [System.Security.Cryptography.X509Certificates.StoreName]::Root,
    [System.Security.Cryptography.X509Certificates.StoreLocation]::LocalMachine)
$store.Open([System.Security.Cryptography.X509Certificates.OpenFlags]::ReadWrite)
try {
    $existing = $store.Certificates.Find([System.Security.Cryptography.X509Certificates.X509FindType]::FindByThumbprint, $Ca.Thumbprint, $false)
    if ($existing.Count -gt 0) {
        Write-Done "CA already trusted: $($Ca.Subject) (thumbprint $($Ca.Thumbprint))"
    } else {
        $store.Add($Ca)
        Write-Done "imported CA $($Ca.Subject) (thumbprint $($Ca.Thumbprint), valid until $($Ca.NotAfter.ToString('yyyy-MM-dd')))"
    }
} finally {
    $store.Close()
}

# ---------------------------------------------------------------------------------------------
# 2. WebClient service: present and automatic
# ---------------------------------------------------------------------------------------------
Write-Step 'WebClient service (the Windows WebDAV client)'
$svc = Get-Service -Name WebClient -ErrorAction SilentlyContinue
if ($null -eq $svc) {
    throw 'The WebClient service is not installed. On Windows Server install the "WebDAV Redirector" feature (Install-WindowsFeature WebDAV-Redirector), reboot, and run this script again.'
}
Set-Service -Name WebClient -StartupType Automatic
Write-Done 'WebClient start type = Automatic'

# ---------------------------------------------------------------------------------------------
# 3. WebClient parameters
# ---------------------------------------------------------------------------------------------
Write-Step 'WebClient parameters'
Set-DwordValue $WebClientKey 'FileSizeLimitInBytes' $FileSizeLimitInBytes
Set-DwordValue $WebClientKey 'FileAttributesLimitInBytes' $FileAttributesLimitInBytes
Set-DwordValue $WebClientKey 'FsCtlRequestTimeoutInSec' $FsCtlRequestTimeoutInSec
Set-DwordValue $MrxDavKey 'FsCtlRequestTimeoutInSec' $FsCtlRequestTimeoutInSec
Set-DwordValue $WebClientKey 'BasicAuthLevel' $BasicAuthLevel

# ---------------------------------------------------------------------------------------------
# 4. Proxy: no WPAD auto-detection, and the service host bypasses any proxy (this user)
# ---------------------------------------------------------------------------------------------
Write-Step "Proxy settings of $runningAs"
# 4a. ProxyOverride (the "Do not use proxy server for addresses beginning with" list).
$override = Get-RawRegistryValue $InternetSettingsKey 'ProxyOverride'
$entries = @()
if ($null -ne $override -and [string]$override -ne '') {
    $entries = @(([string]$override).Split(';') | Where-Object { $_.Trim() -ne '' })
}
$already = @($entries | Where-Object { $_.Trim() -ieq $HostName })
if ($already.Count -gt 0) {
    Write-Done "ProxyOverride already lists $HostName"
} else {
    $newOverride = (@($HostName) + $entries) -join ';'
    New-ItemProperty -LiteralPath $InternetSettingsKey -Name 'ProxyOverride' -PropertyType String -Value $newOverride -Force | Out-Null
    Write-Done "ProxyOverride = $newOverride"
}

# 4b. "Automatically detect settings" is bit 0x08 of the flags DWORD at offset 8 of the
#     Connections\DefaultConnectionSettings blob (0x01 direct, 0x02 manual proxy, 0x04 PAC URL,
#     0x08 auto-detect). Offset 4 is a change counter that Internet Options increments too.
foreach ($valueName in @('DefaultConnectionSettings', 'SavedLegacySettings')) {
    $blob = Get-RawRegistryValue $ConnectionsKey $valueName
    if ($null -eq $blob -or $blob -isnot [byte[]] -or $blob.Length -lt 12) {
        Write-Note "$ConnectionsKey\$valueName not present; auto-detection has no per-user setting to clear there."
        continue
    }
    if (($blob[8] -band 0x08) -eq 0) {
        Write-Done "$valueName`: automatic proxy detection already off"
        continue
    }
    $new = [byte[]]$blob.Clone()
    $new[8] = [byte]($blob[8] -band 0xF7)
    $counter = [uint32](([uint64][BitConverter]::ToUInt32($blob, 4) + 1) % 4294967296)
    [Array]::Copy([BitConverter]::GetBytes($counter), 0, $new, 4, 4)
    New-ItemProperty -LiteralPath $ConnectionsKey -Name $valueName -PropertyType Binary -Value $new -Force | Out-Null
    Write-Done "$valueName`: automatic proxy detection (WPAD) turned off"
}

# ---------------------------------------------------------------------------------------------
# 5. Restart WebClient (it reads its parameters at start) and map the drive
# ---------------------------------------------------------------------------------------------
Write-Step 'Restarting WebClient'
$svc = Get-Service -Name WebClient
if ($svc.Status -eq [System.ServiceProcess.ServiceControllerStatus]::Running) {
    Restart-Service -Name WebClient -Force
} else {
    Start-Service -Name WebClient
}
$svc = Get-Service -Name WebClient
$svc.WaitForStatus([System.ServiceProcess.ServiceControllerStatus]::Running, [TimeSpan]::FromSeconds(30))
Write-Done 'WebClient restarted'

Write-Step "Mapping $Drive to $Url"
$mapped = Get-RawRegistryValue ('HKCU:\Network\' + $Drive.TrimEnd(':')) 'RemotePath'
$inUse = ($null -ne (Get-PSDrive -Name $Drive.TrimEnd(':') -PSProvider FileSystem -ErrorAction SilentlyContinue)) -or ($null -ne $mapped)
if ($null -ne $mapped -and (([string]$mapped).TrimEnd('\') -ieq $UncRoot -or ([string]$mapped).TrimEnd('\') -ieq $Url.TrimEnd('/'))) {
    Write-Done "$Drive is already mapped to $mapped"
} elseif ($inUse) {
    throw "Drive $Drive is already in use. Free it (net use $Drive /delete) or pick another letter with -DriveLetter."
} else {
    Write-Host "   net use will ask for the mydoc password of $User."
    & net.exe use $Drive $Url '/persistent:yes' "/user:$User" '*'
    if ($LASTEXITCODE -ne 0) {
        throw "net use $Drive $Url failed (exit $LASTEXITCODE). Check the server address, the password, and that the certificate names $HostName."
    }
    Write-Done "mapped $Drive to $Url as $User (persistent)"
}
foreach ($area in @('Documents', 'Desktop')) {
    if (-not (Test-Path -LiteralPath ($Drive + '\' + $area))) {
        Write-Note "$Drive\$area is not visible from this (elevated) session yet; the redirection is set anyway."
    }
}

# ---------------------------------------------------------------------------------------------
# 6. Redirect Documents and Desktop
# ---------------------------------------------------------------------------------------------
Write-Step 'Redirecting Documents and Desktop'
Set-ExpandStringValue $UserShellFoldersKey 'Personal' ($Drive + '\Documents')
Set-ExpandStringValue $UserShellFoldersKey $LocalDocumentsGuid ($Drive + '\Documents')
Set-ExpandStringValue $UserShellFoldersKey 'Desktop' ($Drive + '\Desktop')
if ($null -ne (Get-RawRegistryValue $UserShellFoldersKey $LocalDesktopGuid)) {
    Set-ExpandStringValue $UserShellFoldersKey $LocalDesktopGuid ($Drive + '\Desktop')
}

# ---------------------------------------------------------------------------------------------
# Summary
# ---------------------------------------------------------------------------------------------
Write-Step 'Summary'
foreach ($line in $script:Done) { Write-Host "   - $line" }
Write-Host ''
Write-Host "Backup of the previous registry values: $BackupDir"
Write-Host 'Files already in the local Documents and Desktop folders were NOT moved; copy them to the drive if needed.'
Write-Host 'Restart Windows (or at least sign out and in) so that Explorer, the mapped drive and the' -ForegroundColor Yellow
Write-Host 'MRxDAV timeout pick up the new settings. Undo: see README.md next to this script.' -ForegroundColor Yellow
