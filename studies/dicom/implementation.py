"""How this server names itself in the File Meta Information of files it writes (PS3.10 §7.1).

The Implementation Class UID is under the 2.25 arc (PS3.5 §B.2: a UID made from a UUID),
from the name-based UUID `uuid5(NAMESPACE_URL, "https://dicomsvc.invalid/implementation")`,
so it is stable and needs no registered OID root. Microsoft's server writes its own
1.3.6.1.4.1.311.129 (Microsoft's arc) and pydicom's defaults name pydicom: neither names us.
"""

from __future__ import annotations

IMPLEMENTATION_CLASS_UID = "2.25.222659683838598438535372296080443842418"
# SH, at most 16 characters: bump with the project version (pyproject.toml).
IMPLEMENTATION_VERSION_NAME = "DICOMSVC_0.1.0"

