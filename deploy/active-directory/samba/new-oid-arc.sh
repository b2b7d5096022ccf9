#!/usr/bin/env bash
# Prints a fresh OID arc for mydoc's schema extension, the way Microsoft documents for
# organisations without an OID arc of their own: Microsoft's arc 1.2.840.113556.1.8000.2554
# followed by seven numbers read from a new random GUID (hex digits 1-4, 5-8, 9-12, 13-16,
# 17-20, 21-26, 27-32). Run it once per forest and keep the result with the forest's
# documentation: the same arc is the argument of extend-schema.sh (and the ldifde import).
#
#   new-oid-arc.sh
set -euo pipefail
guid=$(cat /proc/sys/kernel/random/uuid)
hex=${guid//-/}
printf '1.2.840.113556.1.8000.2554.%d.%d.%d.%d.%d.%d.%d\n' \
  "0x${hex:0:4}" "0x${hex:4:4}" "0x${hex:8:4}" "0x${hex:12:4}" "0x${hex:16:4}" "0x${hex:20:6}" "0x${hex:26:6}"
