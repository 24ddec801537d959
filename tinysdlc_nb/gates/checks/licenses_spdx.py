"""License metadata of a Python distribution, as an SPDX expression, judged against a policy.

Three metadata fields can name a distribution's license, read in this order:

1. ``License-Expression`` (core metadata 2.4, PEP 639): an SPDX expression by definition.
2. ``License``: free text. It is used first when it already parses as an SPDX expression
   of known ids, such as ``BSD-3-Clause``.
3. ``Classifier: License :: ...``: trove classifiers, mapped through ``CLASSIFIER_IDS``.
   Several license classifiers are read as a choice (``A OR B``): dual-licensed projects
   such as sniffio list both the MIT and the Apache classifier.

When none of these gives an expression, a ``License`` text found in ``NAME_IDS`` is used.
Parsing and the SPDX id list come from the ``license-expression`` package.
"""

from __future__ import annotations

import fnmatch
import logging
from dataclasses import dataclass
from functools import cache

from license_expression import ExpressionError, Licensing, get_spdx_licensing

log = logging.getLogger(__name__)

# pip-licenses writes this for a field the distribution does not set.
UNKNOWN = "UNKNOWN"

# The last part of each trove license classifier that has an SPDX id. A GNU classifier
# without a version maps to the "or-later" id of the first version, because these licenses
# let the recipient pick any published version when the program names none.
# NOTE: "BSD License" does not say which BSD license. BSD-3-Clause is a guess, and it
# changes no deny decision because every BSD variant is permissive.
CLASSIFIER_IDS = {
    "Academic Free License (AFL)": "AFL-3.0",
    "Aladdin Free Public License (AFPL)": "Aladdin",
    "Apache Software License": "Apache-2.0",
    "Apple Public Source License": "APSL-2.0",
    "Artistic License": "Artistic-2.0",
    "Attribution Assurance License": "AAL",
    "BSD License": "BSD-3-Clause",
    "Blue Oak Model License (BlueOak-1.0.0)": "BlueOak-1.0.0",
    "Boost Software License 1.0 (BSL-1.0)": "BSL-1.0",
    "CC0 1.0 Universal (CC0 1.0) Public Domain Dedication": "CC0-1.0",
    "CEA CNRS Inria Logiciel Libre License, version 2.1 (CeCILL-2.1)": "CECILL-2.1",
    "CeCILL-B Free Software License Agreement (CECILL-B)": "CECILL-B",
    "CeCILL-C Free Software License Agreement (CECILL-C)": "CECILL-C",
    "CMU License (MIT-CMU)": "MIT-CMU",
    "Common Development and Distribution License 1.0 (CDDL-1.0)": "CDDL-1.0",
    "Common Public License": "CPL-1.0",
    "Eclipse Public License 1.0 (EPL-1.0)": "EPL-1.0",
    "Eclipse Public License 2.0 (EPL-2.0)": "EPL-2.0",
    "Educational Community License, Version 2.0 (ECL-2.0)": "ECL-2.0",
    "Eiffel Forum License": "EFL-2.0",
    "Eiffel Forum License (EFL)": "EFL-2.0",
    "European Union Public Licence 1.0 (EUPL 1.0)": "EUPL-1.0",
    "European Union Public Licence 1.1 (EUPL 1.1)": "EUPL-1.1",
    "European Union Public Licence 1.2 (EUPL 1.2)": "EUPL-1.2",
    "GNU Affero General Public License v3": "AGPL-3.0-only",
    "GNU Affero General Public License v3 or later (AGPLv3+)": "AGPL-3.0-or-later",
    "GNU Free Documentation License (FDL)": "GFDL-1.1-or-later",
    "GNU General Public License (GPL)": "GPL-1.0-or-later",
    "GNU General Public License v2 (GPLv2)": "GPL-2.0-only",
    "GNU General Public License v2 or later (GPLv2+)": "GPL-2.0-or-later",
    "GNU General Public License v3 (GPLv3)": "GPL-3.0-only",
    "GNU General Public License v3 or later (GPLv3+)": "GPL-3.0-or-later",
    "GNU Lesser General Public License v2 (LGPLv2)": "LGPL-2.0-only",
    "GNU Lesser General Public License v2 or later (LGPLv2+)": "LGPL-2.0-or-later",
    "GNU Lesser General Public License v3 (LGPLv3)": "LGPL-3.0-only",
    "GNU Lesser General Public License v3 or later (LGPLv3+)": "LGPL-3.0-or-later",
    "GNU Library or Lesser General Public License (LGPL)": "LGPL-2.0-or-later",
    "Historical Permission Notice and Disclaimer (HPND)": "HPND",
    "IBM Public License": "IPL-1.0",
    "ISC License (ISCL)": "ISC",
    "Intel Open Source License": "Intel",
    "MIT License": "MIT",
    "MIT No Attribution License (MIT-0)": "MIT-0",
    "MirOS License (MirOS)": "MirOS",
    "Motosoto License": "Motosoto",
    "Mozilla Public License 1.0 (MPL)": "MPL-1.0",
    "Mozilla Public License 1.1 (MPL 1.1)": "MPL-1.1",
    "Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0",
    "Mulan Permissive Software License v2 (MulanPSL-2.0)": "MulanPSL-2.0",
    "Nethack General Public License": "NGPL",
    "Netscape Public License (NPL)": "NPL-1.1",
    "Nokia Open Source License": "Nokia",
    "Nokia Open Source License (NOKOS)": "Nokia",
    "Open Group Test Suite License": "OGTSL",
    "Open Software License 3.0 (OSL-3.0)": "OSL-3.0",
    "PostgreSQL License": "PostgreSQL",
    "Python License (CNRI Python License)": "CNRI-Python",
    "Python Software Foundation License": "PSF-2.0",
    "Qt Public License (QPL)": "QPL-1.0",
    "Ricoh Source Code Public License": "RSCPL",
    "SIL Open Font License 1.1 (OFL-1.1)": "OFL-1.1",
    "Sleepycat License": "Sleepycat",
    "Sun Industry Standards Source License (SISSL)": "SISSL",
    "Sun Public License": "SPL-1.0",
    "The Unlicense (Unlicense)": "Unlicense",
    "Universal Permissive License (UPL)": "UPL-1.0",
    "University of Illinois/NCSA Open Source License": "NCSA",
    "Vovida Software License 1.0": "VSL-1.0",
    "W3C License": "W3C",
    "X.Net License": "Xnet",
    "Zope Public License": "ZPL-2.1",
    "zlib/libpng License": "Zlib",
}

# Free-text ``License`` values that are not SPDX ids but name one license, lowercased.
NAME_IDS = {
    "apache": "Apache-2.0",
    "apache 2": "Apache-2.0",
    "apache 2.0": "Apache-2.0",
    "apache license": "Apache-2.0",
    "apache license 2.0": "Apache-2.0",
    "apache license, version 2.0": "Apache-2.0",
    "apache license version 2.0": "Apache-2.0",
    "apache software license": "Apache-2.0",
    "apache software license 2.0": "Apache-2.0",
    "asl 2": "Apache-2.0",
    "bsd": "BSD-3-Clause",
    "bsd license": "BSD-3-Clause",
    "bsd-3": "BSD-3-Clause",
    "3-clause bsd": "BSD-3-Clause",
    "bsd 3-clause": "BSD-3-Clause",
    "bsd 3-clause license": "BSD-3-Clause",
    "new bsd": "BSD-3-Clause",
    "new bsd license": "BSD-3-Clause",
    "modified bsd": "BSD-3-Clause",
    "bsd-2": "BSD-2-Clause",
    "2-clause bsd": "BSD-2-Clause",
    "bsd 2-clause": "BSD-2-Clause",
    "simplified bsd": "BSD-2-Clause",
    "mit license": "MIT",
    "the mit license": "MIT",
    "mit/x11": "MIT",
    "expat": "MIT",
    "isc license": "ISC",
    "psf": "PSF-2.0",
    "psf license": "PSF-2.0",
    "psfl": "PSF-2.0",
    "python software foundation license": "PSF-2.0",
    "mpl 2.0": "MPL-2.0",
    "mpl-2": "MPL-2.0",
    "mozilla public license 2.0": "MPL-2.0",
    "zpl 2.1": "ZPL-2.1",
    "the unlicense": "Unlicense",
    "gpl": "GPL-1.0-or-later",
    "gplv2": "GPL-2.0-only",
    "gplv2+": "GPL-2.0-or-later",
    "gplv3": "GPL-3.0-only",
    "gplv3+": "GPL-3.0-or-later",
    "gpl v3": "GPL-3.0-only",
    "lgpl": "LGPL-2.0-or-later",
    "lgplv2+": "LGPL-2.0-or-later",
    "lgplv3": "LGPL-3.0-only",
    "lgplv3+": "LGPL-3.0-or-later",
    "agpl": "AGPL-3.0-or-later",
    "agplv3": "AGPL-3.0-only",
}

PERMITTED, DENIED, UNRECOGNISED = "permitted", "denied", "unrecognised"


@dataclass(frozen=True)
class License:
    """A distribution's license as read from its metadata.

    ``expression`` is the normalised SPDX expression, or "" when none could be read: then
    ``text`` tells an unrecognised value (set) from missing metadata (empty). ``source``
    names the field that was read.
    """

    expression: str
    source: str
    text: str


@dataclass(frozen=True)
class Verdict:
    """The outcome of a license against the deny list, with the ids that decided it."""

    outcome: str
    denied: tuple[str, ...] = ()
    unrecognised: tuple[str, ...] = ()


@cache
def spdx() -> Licensing:
    """Return the SPDX licensing of ``license-expression``, built once from its license list."""
    return get_spdx_licensing()


def read_license(expression_field: str, license_field: str, classifier_field: str) -> License:
    """Return the license a distribution declares, from the fields pip-licenses reports.

    ``classifier_field`` is pip-licenses' "; "-joined list of the last part of each
    license classifier. A field the distribution does not set is ``UNKNOWN`` or empty.
    """
    if _is_set(expression_field):
        return License(_normalise(expression_field), "License-Expression", expression_field)

    normalised = _normalise(license_field) if _is_set(license_field) else ""
    if normalised and not spdx().unknown_license_keys(normalised):
        return License(normalised, "License", license_field)

    classifiers = [name for name in classifier_field.split("; ") if _is_set(name)]
    if classifiers:
        ids = sorted({CLASSIFIER_IDS.get(name, _license_ref(name)) for name in classifiers})
        return License(" OR ".join(ids), "classifier", classifier_field)

    if _is_set(license_field):
        named = NAME_IDS.get(" ".join(license_field.lower().split()))
        return License(named or "", "License", license_field)
    return License("", "", "")


def judge(expression: str, deny: list[str]) -> Verdict:
    """Judge an SPDX expression: OR passes when one side passes, AND when both do.

    An id that matches a ``deny`` glob (case-insensitive, such as ``GPL-*``) is denied.
    An id missing from the SPDX license list is unrecognised and never passes by itself,
    though an OR with a permitted other side does.
    """
    parsed = spdx().parse(expression)
    unknown = set(spdx().unknown_license_keys(parsed))
    outcome = _judge_node(parsed, unknown, [pattern.lower() for pattern in deny])

    keys = [symbol.key for symbol in spdx().license_symbols(parsed, decompose=True)
            if not symbol.is_exception]
    denied = tuple(sorted({key for key in keys if _denied(key, deny) and key not in unknown}))
    return Verdict(outcome, denied if outcome != PERMITTED else (),
                   tuple(sorted(unknown)) if outcome != PERMITTED else ())


def one_line(text: str, limit: int = 80) -> str:
    """Return ``text`` on one line, cut to ``limit`` characters (License may be a whole text)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _judge_node(node, unknown: set[str], deny: list[str]) -> str:
    licensing = spdx()
    if isinstance(node, (licensing.AND, licensing.OR)):
        outcomes = [_judge_node(child, unknown, deny) for child in node.args]
        if isinstance(node, licensing.OR) and PERMITTED in outcomes:
            return PERMITTED
        if isinstance(node, licensing.AND) and DENIED in outcomes:
            return DENIED
        if UNRECOGNISED in outcomes:
            return UNRECOGNISED
        return DENIED if DENIED in outcomes else PERMITTED

    key = node.license_symbol.key if hasattr(node, "license_symbol") else node.key
    if key in unknown:
        return UNRECOGNISED
    return DENIED if _denied(key, deny) else PERMITTED


def _denied(key: str, deny: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(key.lower(), pattern.lower()) for pattern in deny)


def _normalise(text: str) -> str:
    """Return ``text`` as a normalised SPDX expression, or "" when it does not parse."""
    try:
        parsed = spdx().parse(text.strip())
    except ExpressionError:
        return ""
    return str(parsed) if parsed is not None else ""


def _license_ref(classifier: str) -> str:
    """Return an SPDX LicenseRef for a classifier without an SPDX id, such as "Public Domain"."""
    letters = "".join(char if char.isalnum() else "-" for char in classifier)
    return "LicenseRef-" + "-".join(part for part in letters.split("-") if part)


def _is_set(value: str | None) -> bool:
    return bool(value and value.strip() and value.strip() != UNKNOWN)
