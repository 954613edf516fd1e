"""Read NetworkManager keyfiles with libnm, NetworkManager's own keyfile reader.

Run by Debian's /usr/bin/python3 (python3-gi and gir1.2-nm-1.0; libnm is not
reachable from a venv), never imported by the tests: tests/harness/libnm.py
starts it once and sends it batches of keyfiles. Each line of standard input
is a JSON object {file name: keyfile text}; for each, one line of standard
output is a JSON object, per file name:

    warnings  what the keyfile handler reported ("[vlan] id: ..."): any is a failure
    unknown   sections and keys libnm does not know (it ignores them silently)
    errors    a load error or what connection.verify() refused
    normalized  what NetworkManager's normalizing would change (it repairs what verify() lets pass)
    settings  the connection as libnm read it (settings_of)
"""

import json
import re
import sys

import gi

gi.require_version("NM", "1.0")
from gi.repository import GLib, GObject, NM  # noqa: E402

#: keyfile group -> setting name, where the keyfile uses an alias (libnm-core's alias_list)
ALIASES = {"ethernet": "802-3-ethernet", "wifi": "802-11-wireless", "wifi-security": "802-11-wireless-security"}

#: keyfile forms of the properties that are lists of records (address1=, route1=, route1_options=)
IP_FORMS = re.compile(r"^(?:(?:address|addresses|route|routes)\d*|(?:route|routes)\d*_options|routing-rule\d+)$")

#: settings whose keys are free-form ([bond]: each key is one entry of bond.options)
FREE_FORM = {"bond"}


def unknown_keys(keyfile):
    """Sections libnm has no setting for, and keys that are not a property of their setting."""
    found = []
    for group in keyfile.get_groups()[0]:
        name = ALIASES.get(group, group)
        gtype = NM.Setting.lookup_type(name)
        if not gtype or gtype == GObject.TYPE_INVALID:
            found.append(f"[{group}]: no such setting")
            continue
        properties = {spec.name for spec in GObject.list_properties(gtype)} - {"name"}
        for key in keyfile.get_keys(group)[0]:
            if key in properties or name in FREE_FORM:
                continue
            if name in ("ipv4", "ipv6") and IP_FORMS.match(key):
                continue
            found.append(f"[{group}] {key}: no such property")
    return found


def plain(value):
    """A D-Bus value unpacked by PyGObject, as JSON (byte arrays, such as MACs, are lists of numbers)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, bytes):
        return list(value)
    return value


def read(text):
    result = {"warnings": [], "unknown": [], "errors": [], "normalized": [], "settings": None}
    keyfile = GLib.KeyFile()
    try:
        keyfile.load_from_data(text, len(text.encode("utf-8")), GLib.KeyFileFlags.NONE)
    except GLib.Error as exc:
        result["errors"].append(f"not a key file: {exc.message}")
        return result
    result["unknown"] = unknown_keys(keyfile)

    def handler(_keyfile, _connection, handler_type, data, _user_data):
        if handler_type == NM.KeyfileHandlerType.WARN:
            message, _severity = data.warn_get()
            group, key, _setting, _property = data.get_context()
            where = f"[{group}] {key}: " if key else (f"[{group}]: " if group else "")
            result["warnings"].append(where + message)
        return True   # handled: reading goes on, so every warning is reported

    try:
        connection = NM.keyfile_read(keyfile, "/nonexistent", NM.KeyfileHandlerFlags.NONE, handler, None)
    except GLib.Error as exc:
        result["errors"].append(f"keyfile_read: {exc.message}")
        return result
    result["settings"] = settings_of(connection)
    try:
        connection.verify()
    except GLib.Error as exc:
        result["errors"].append(f"verify: {exc.message}")
        return result
    result["normalized"] = normalized(connection, result["settings"])
    return result


def normalized(connection, settings):
    """What NetworkManager's normalizing (done on every load) changes in the connection: verify() accepts
    what normalizing repairs, silently. Settings it adds whole (at their defaults) are not changes."""
    clone = NM.SimpleConnection.new_clone(connection)
    clone.normalize()
    after = settings_of(clone)
    changes = []
    for name, values in settings.items():
        if name not in after:
            changes.append(f"[{name}]: removed")
            continue
        for key in sorted(set(values) | set(after[name])):
            if values.get(key) != after[name].get(key):
                changes.append(f"[{name}] {key}: {values.get(key)!r} -> {after[name].get(key)!r}")
    return changes


def settings_of(connection):
    """libnm's D-Bus form of the connection, which leaves out what is at its default value, completed with
    the value of every property of a plain type (number, boolean, string, enum) it left out."""
    data = plain(connection.to_dbus(NM.ConnectionSerializationFlags.ALL).unpack())
    for setting in connection.get_settings():
        values = data.setdefault(setting.get_name(), {})
        for spec in GObject.list_properties(type(setting)):
            if spec.name == "name" or spec.name in values:
                continue
            value = setting.get_property(spec.name)
            if isinstance(value, bool) or value is None or isinstance(value, str):
                values[spec.name] = value
            elif isinstance(value, int):
                values[spec.name] = int(value)
    return data


def main():
    for line in sys.stdin:
        files = json.loads(line)
        sys.stdout.write(json.dumps({name: read(text) for name, text in files.items()}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
