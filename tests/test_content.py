"""Android's `content` command on the simulated phone: its output, errors and exit status, byte for byte, over
the apps' own databases, through the phone's shell, through Debian's adb, and through android_world's helpers."""

from __future__ import annotations

import re
import sqlite3
import time
from types import SimpleNamespace

import pytest

from droidrl.envs.sim import content, shell
from droidrl.envs.sim.apps import contacts, sms
from droidrl.envs.sim.phone import Phone

SEED_PHONES = (
    "Row: 0 display_name=Alice Johnson, number=(650) 555-0134\n"
    "Row: 1 display_name=Bob Martinez, number=+1 415-555-0199\n"
    "Row: 2 display_name=Carol Nguyen, number=(212) 555-0147\n"
    "Row: 3 display_name=David Kim, number=(312) 555-0162\n"
    "Row: 4 display_name=Emma Wilson, number=(617) 555-0118\n"
    "Row: 5 display_name=Frank Okafor, number=(206) 555-0175\n"
)


@pytest.fixture
def phone() -> Phone:
    return Phone()


def sh(phone: Phone, command: str) -> tuple[str, str, int]:
    result = shell.run(phone, command)
    return result.stdout.decode(), result.stderr.decode(), result.exit_code


def ok(phone: Phone, command: str) -> str:
    """stdout of a command that must succeed with nothing on stderr."""
    out, err, code = sh(phone, command)
    assert (err, code) == ("", 0), command
    return out


# ---- contacts ---------------------------------------------------------------------------------------------


def test_legacy_phones_query_is_what_android_world_parses(phone):
    assert ok(phone, "content query --uri content://contacts/phones/ --projection display_name:number") == SEED_PHONES


def test_legacy_phones_without_projection_lists_the_projection_map_in_array_map_order(phone):
    first = ok(phone, "content query --uri content://contacts/phones/").splitlines()[0]
    assert first == (
        "Row: 0 starred=0, number=(650) 555-0134, person=1, last_time_contacted=0, number_key=4310555056,"
        " custom_ringtone=NULL, primary_organization=NULL, phonetic_name=, primary_email=3, primary_phone=2,"
        " _id=2, name=Alice Johnson, type=2, label=NULL, notes=NULL, send_to_voicemail=0,"
        " display_name=Alice Johnson, times_contacted=0, isprimary=1"
    )


def test_people_where_sort_and_id(phone):
    assert ok(
        phone, "content query --uri content://contacts/people/ --projection _id:name:starred --where starred=1"
    ) == ("Row: 0 _id=3, name=Carol Nguyen, starred=1\n")
    assert ok(phone, "content query --uri content://contacts/people/4 --projection name") == "Row: 0 name=David Kim\n"
    out = ok(phone, "content query --uri content://contacts/people --projection name --sort 'name DESC'")
    assert out.splitlines()[0] == "Row: 0 name=Frank Okafor"


def test_contacts_provider_uris(phone):
    out = ok(
        phone,
        "content query --uri content://com.android.contacts/data/phones"
        " --projection raw_contact_id:mimetype:data1:data4 --where raw_contact_id=2",
    )
    assert (
        out == "Row: 0 raw_contact_id=2, mimetype=vnd.android.cursor.item/phone_v2, data1=+1 415-555-0199,"
        " data4=+14155550199\n"
    )
    out = ok(
        phone,
        "content query --uri content://com.android.contacts/raw_contacts/3"
        " --projection _id:contact_id:display_name:starred:account_name:deleted",
    )
    assert out == "Row: 0 _id=3, contact_id=3, display_name=Carol Nguyen, starred=1, account_name=NULL, deleted=0\n"
    out = ok(
        phone,
        "content query --uri content://com.android.contacts/contacts --projection _id:display_name:has_phone_number"
        " --sort _id --where \"display_name LIKE 'E%'\"",
    )
    assert out == "Row: 0 _id=5, display_name=Emma Wilson, has_phone_number=1\n"
    out = ok(
        phone,
        "content query --uri content://com.android.contacts/data --projection mimetype --where raw_contact_id=4"
        " --sort _id",
    )
    assert out == (
        "Row: 0 mimetype=vnd.android.cursor.item/name\n"
        "Row: 1 mimetype=vnd.android.cursor.item/phone_v2\n"
        "Row: 2 mimetype=vnd.android.cursor.item/email_v2\n"
        "Row: 3 mimetype=vnd.android.cursor.item/organization\n"
    )


def test_insert_through_the_provider_shows_in_the_app_and_the_legacy_view(phone):
    ok(phone, "content insert --uri content://com.android.contacts/raw_contacts --bind starred:b:true")
    ok(
        phone,
        "content insert --uri content://com.android.contacts/data --bind raw_contact_id:i:7"
        " --bind mimetype:s:vnd.android.cursor.item/name --bind data1:s:'Zed Zulu'",
    )
    ok(
        phone,
        "content insert --uri content://com.android.contacts/data --bind raw_contact_id:i:7"
        " --bind mimetype:s:vnd.android.cursor.item/phone_v2 --bind data1:s:555-0100 --bind data2:i:2",
    )
    out = ok(
        phone,
        "content query --uri content://contacts/phones/ --projection display_name:number:starred"
        " --where \"number LIKE '555%'\"",
    )
    assert out == "Row: 0 display_name=Zed Zulu, number=555-0100, starred=1\n"
    phone.launch(contacts.PACKAGE)
    assert phone.find(text="Zed Zulu") is not None


def test_delete_all_contacts_and_by_where(phone):
    ok(
        phone,
        "content delete --uri content://com.android.contacts/raw_contacts --where \"display_name='Bob Martinez'\"",
    )
    assert "Bob Martinez" not in ok(phone, "content query --uri content://contacts/phones/ --projection display_name")
    with phone.fs.sqlite(contacts.DB_PATH) as conn:  # the trigger took its data and aggregate with it
        assert conn.execute("SELECT count(*) FROM data WHERE raw_contact_id = 2").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM contacts WHERE name_raw_contact_id = 2").fetchone() == (0,)
    ok(phone, "content delete --uri content://contacts/people/")
    assert ok(phone, "content query --uri content://contacts/phones/") == "No result found.\n"
    assert ok(phone, "content query --uri content://com.android.contacts/contacts") == "No result found.\n"
    phone.launch(contacts.PACKAGE)
    assert phone.find(text="Your contacts list is empty") is not None


def test_cleared_provider_answers_empty(phone):
    ok(phone, "pm clear com.android.providers.contacts")
    assert (
        ok(phone, "content query --uri content://contacts/phones/ --projection display_name:number")
        == "No result found.\n"
    )


# ---- sms --------------------------------------------------------------------------------------------------


def test_sms_sent_is_the_sms_table_newest_first(phone):
    assert ok(phone, "content query --uri content://sms/sent") == (
        "Row: 0 _id=2, thread_id=1, address=+16505550134, person=NULL, date=1697291040000, date_sent=0,"
        " protocol=NULL, read=1, status=-1, type=2, reply_path_present=NULL, subject=NULL,"
        " body=Yes! 12:30 at the usual place, service_center=NULL, locked=0, sub_id=-1, error_code=0,"
        " creator=NULL, seen=1\n"
    )
    inbox = ok(phone, "content query --uri content://sms/inbox --projection _id:address:type")
    assert inbox == (
        "Row: 0 _id=4, address=32665, type=1\nRow: 1 _id=3, address=+14155550199, type=1\n"
        "Row: 2 _id=1, address=+16505550134, type=1\n"
    )


def test_sms_insert_threads_and_delete(phone):
    ok(
        phone,
        "content insert --uri content://sms/sent --bind address:s:+15551234567 --bind 'body:s:Hi, there'"
        " --bind date:l:1693421073675",
    )
    out = ok(
        phone,
        "content query --uri content://sms/sent --projection _id:thread_id:body:read"
        " --where \"address='+15551234567'\"",
    )
    assert out == "Row: 0 _id=5, thread_id=4, body=Hi, there, read=1\n"
    threads = ok(
        phone, "content query --uri content://mms-sms/conversations?simple=true --projection _id:message_count:snippet"
    )
    assert "Row: 3 _id=4, message_count=1, snippet=Hi, there" in threads  # newest first
    conversations = ok(
        phone, "content query --uri content://mms-sms/conversations --projection thread_id:_id:body:ct_t"
    )
    assert conversations.splitlines()[-1] == "Row: 3 thread_id=4, _id=5, body=Hi, there, ct_t=NULL"
    assert conversations.splitlines()[0] == "Row: 0 thread_id=1, _id=2, body=Yes! 12:30 at the usual place, ct_t=NULL"
    ok(phone, "content delete --uri content://sms --where 'thread_id=4'")
    assert "_id=4," not in ok(phone, "content query --uri content://mms-sms/conversations?simple=true --projection _id")


# ---- call log, calendar, media, settings --------------------------------------------------------------------


def test_call_log_and_calendar_are_empty_providers(phone):
    assert ok(phone, "content query --uri content://call_log/calls") == "No result found.\n"
    assert ok(phone, "content delete --uri content://call_log/calls") == ""
    assert ok(phone, "content query --uri content://com.android.calendar/events") == "No result found.\n"


def test_media_lists_shared_storage_and_delete_removes_the_files(phone):
    phone.fs.write("/sdcard/Download/report.pdf", b"x" * 10)
    phone.fs.write("/sdcard/Pictures/cat.jpg", b"y" * 20)
    out = ok(
        phone,
        "content query --uri content://media/external/file --projection _data:mime_type:_size"
        " --where \"_data LIKE '%.pdf' OR _data LIKE '%.jpg'\"",
    )
    assert out == (
        "Row: 0 _data=/storage/emulated/0/Download/report.pdf, mime_type=application/pdf, _size=10\n"
        "Row: 1 _data=/storage/emulated/0/Pictures/cat.jpg, mime_type=image/jpeg, _size=20\n"
    )
    assert "cat.jpg" in ok(
        phone, "content query --uri content://media/external/images/media --projection _display_name"
    )
    ok(phone, "content delete --uri content://media/external/downloads")
    assert not phone.fs.is_file("/sdcard/Download/report.pdf")
    assert phone.fs.is_file("/sdcard/Pictures/cat.jpg")


def test_settings_insert_update_query_delete(phone):
    ok(phone, "content insert --uri content://settings/system --bind name:s:h2_key --bind value:i:3")
    assert (
        ok(phone, "content query --uri content://settings/system --projection name:value --where \"name='h2_key'\"")
        == "Row: 0 name=h2_key, value=3\n"
    )
    ok(phone, "content update --uri content://settings/system --bind value:s:4 --where \"name='h2_key'\"")
    assert ok(phone, "settings get system h2_key") == "4\n"
    ok(phone, "content delete --uri content://settings/system --where \"name='h2_key'\"")
    assert ok(phone, "content query --uri content://settings/system/h2_key") == "No result found.\n"
    _, err, code = sh(phone, "content query --uri content://settings/system --where value=1")
    assert code == 0 and err.splitlines()[:3] == [
        "Error while accessing provider:settings",
        "java.lang.IllegalArgumentException: Supported SQL:",
        "  uri content://some_table/some_property with null where and where args",
    ]
    assert "  but got - uri:content://settings/system, where:value=1 whereArgs:null" in err


# ---- errors -----------------------------------------------------------------------------------------------


def test_unknown_provider_and_unknown_uri(phone):
    out, err, code = sh(phone, "content query --uri content://nope/x")
    assert (out, code) == ("", 0)
    assert err == (
        "Error while accessing provider:nope\n"
        "java.lang.IllegalStateException: Could not find provider: nope\n"
        "\tat com.android.commands.content.Content$Command.execute(Content.java:519)\n"
        "\tat com.android.commands.content.Content.main(Content.java:735)\n"
        "\tat com.android.internal.os.RuntimeInit.nativeFinishInit(Native Method)\n"
        "\tat com.android.internal.os.RuntimeInit.main(RuntimeInit.java:366)\n"
    )
    _, err, code = sh(phone, "content query --uri content://sms/nothing/here")
    assert code == 0 and err.splitlines()[:2] == [
        "Error while accessing provider:sms",
        "java.lang.IllegalArgumentException: Unknown URL content://sms/nothing/here",
    ]
    assert "\tat com.android.commands.content.Content$QueryCommand.onExecute(Content.java:661)\n" in err
    _, err, _ = sh(phone, "content delete --uri content://com.android.contacts/nothing")
    assert err.splitlines()[1] == (
        "java.lang.IllegalArgumentException: URI: content://com.android.contacts/nothing,"
        " calling user: android.uid.shell:2000, calling package:com.android.shell"
    )
    phone.adb_root = True  # after `adb root` the caller is uid 0, which has no package
    _, err, _ = sh(phone, "content query --uri content://contacts/nothing")
    assert err.splitlines()[1] == "java.lang.IllegalArgumentException: URI: content://contacts/nothing, calling user: 0"


def test_bad_arguments_print_usage_and_error_on_stdout(phone):
    out, err, code = sh(phone, "content")
    assert (err, code) == ("", 0)
    assert out.startswith("usage: adb shell content [subcommand] [options]\n\n")
    assert out.endswith("\n\n\n[ERROR] Unsupported operation: null\n")
    for command, message in [
        ("content query", "Content provider URI not specified. Did you specify --uri argument?"),
        ("content query --uri", "No value for argument: --uri"),
        ("content insert --uri content://sms", "Bindings not specified. Did you specify --bind argument(s)?"),
        ("content insert --uri content://sms --bind x:i:abc", 'For input string: "abc"'),
        ("content insert --uri content://sms --bind x:q:1", "Unsupported type: q"),
        ("content insert --uri content://sms --bind nocolon", "Binding not well formed: nocolon"),
        ("content query --uri content://sms --bind a:s:b", "Unsupported argument: --bind"),
        ("content frob", "Unsupported operation: frob"),
    ]:
        out, err, code = sh(phone, command)
        assert (err, code) == ("", 0) and out.endswith(f"\n[ERROR] {message}\n"), command


def test_sql_errors_are_sqlite_exceptions_and_stay_inside_the_phone(phone, tmp_path):
    _, err, code = sh(phone, "content query --uri content://sms --where nosuch=1")
    assert code == 0 and err.splitlines()[1].startswith(
        "android.database.sqlite.SQLiteException: no such column: nosuch (code 1 SQLITE_ERROR): , while compiling:"
    )
    _, err, _ = sh(phone, "content query --uri content://sms --where '1) OR (1'")
    assert 'near ")": syntax error' in err  # the strict builder compiles the selection unwrapped too
    target = tmp_path / "stolen.db"
    for where in (
        f"1=1; ATTACH '{target}' AS x",
        f"_id IN (SELECT 1 FROM pragma_database_list) OR load_extension('{target}')",
    ):
        _, err, _ = sh(phone, f'content query --uri content://sms --where "{where}"')
        assert err.startswith("Error while accessing provider:sms\nandroid.database.sqlite.SQLiteException")
    _, err, _ = sh(phone, "content query --uri content://sms --projection \"1); ATTACH 'x' AS y; --\"")
    assert "SQLiteException" in err
    assert not target.exists()
    # An unbounded query is stopped instead of holding the phone.
    started = time.monotonic()
    where = "(WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c) > 0"
    _, err, _ = sh(phone, f'content query --uri content://sms --where "{where}"')
    assert "SQLiteException" in err and time.monotonic() - started < 30
    assert ok(phone, "content query --uri content://sms/sent --projection _id") == "Row: 0 _id=2\n"


def test_the_provider_leaves_the_connection_confined(phone, tmp_path):
    """The provider's own SQL checks go on top of the VFS's confinement and end with it still in force."""
    target = tmp_path / "host.db"
    with phone.fs.sqlite(sms.DB_PATH) as conn:
        assert content._run(conn, "SELECT count(*) FROM sms").fetchone()[0] >= 1
        content._validate(conn, "SELECT 1 FROM sms WHERE 1")
        for sql in (f"ATTACH '{target}' AS x", f"VACUUM INTO '{target}'"):
            with pytest.raises(sqlite3.DatabaseError, match="authoriz"):
                conn.execute(sql)
        with pytest.raises(sqlite3.OperationalError):
            conn.execute("SELECT load_extension('x')")
        # The stricter checks applied meanwhile: the provider refuses a PRAGMA the VFS alone would allow.
        with pytest.raises(content.ProviderError):
            content._run(conn, "PRAGMA user_version")
    assert not target.exists()


def test_binds_are_parameters_not_sql(phone):
    ok(phone, 'content insert --uri content://sms/inbox --bind address:s:1234 --bind "body:s:x\'); DROP TABLE sms; --"')
    out = ok(phone, "content query --uri content://sms/inbox --projection body --where address=1234")
    assert out == "Row: 0 body=x'); DROP TABLE sms; --\n"


def test_value_formatting():
    assert content.format_rows([[("a", None), ("b", b"\x00"), ("c", 1.5), ("d", 7), ("e", "")]]) == (
        "Row: 0 a=NULL, b=BLOB, c=1.5, d=7, e=\n"
    )
    assert [content.java_float(v) for v in (1.0, 0.1, 1e10, 123456.7, 1e-5)] == [
        "1.0",
        "0.1",
        "1.0E10",
        "123456.7",
        "1.0E-5",
    ]


# ---- android_world's own helpers on the phone's output ---------------------------------------------------------


class _AdbEnv:
    """The one method android_world's adb_utils calls on an env: execute_adb_call, answered by the phone's shell."""

    def __init__(self, phone: Phone) -> None:
        self.phone = phone
        self.controller = self

    def execute_adb_call(self, request):
        from android_env.proto import adb_pb2

        args = list(request.generic.args)
        assert args[0] == "shell"
        result = shell.run(self.phone, " ".join(args[1:]))
        return adb_pb2.AdbResponse(
            status=adb_pb2.AdbResponse.Status.OK, generic=adb_pb2.AdbResponse.GenericResponse(output=result.stdout)
        )


def test_android_world_contacts_utils_list_contacts(phone):
    contacts_utils = pytest.importorskip("android_world.utils.contacts_utils")
    found = contacts_utils.list_contacts(_AdbEnv(phone))
    assert found[0] == contacts_utils.Contact("Alice Johnson", "6505550134")
    assert [c.name for c in found] == [
        "Alice Johnson",
        "Bob Martinez",
        "Carol Nguyen",
        "David Kim",
        "Emma Wilson",
        "Frank Okafor",
    ]


def test_android_world_sms_validators_read_sent_messages(phone):
    sms_validators = pytest.importorskip("android_world.task_evals.common_validators.sms_validators")
    env = _AdbEnv(phone)
    now_ms = phone.state.clock_ms
    ok(
        phone,
        f"content insert --uri content://sms/sent --bind address:s:+15551234567 --bind 'body:s:Hi, there'"
        f" --bind date:l:{now_ms}",
    )
    task = SimpleNamespace()
    messages = sms_validators.SimpleSMSSendSms.get_sent_messages(task, env)
    assert messages[0].startswith("Row: 0 _id=5, thread_id=4, address=+15551234567")
    assert sms_validators.was_sent(messages, "+15551234567", "Hi, there", now_ms)
    assert not sms_validators.was_sent(messages, "+15550000000", "Hi, there", now_ms)
    received = sms_validators.SimpleSMSSendSms._get_received_messages(task, env)
    assert sms_validators.parse_message(received[-1])["body"] == "Are we still on for lunch tomorrow?"


def test_android_world_clears_call_log_and_downloads(phone):
    adb_utils = pytest.importorskip("android_world.env.adb_utils")
    user_data_generation = pytest.importorskip("android_world.task_evals.utils.user_data_generation")
    phone.fs.write("/sdcard/Download/old.txt", b"old")
    adb_utils.clear_android_emulator_call_log(_AdbEnv(phone))
    user_data_generation._clear_external_downloads(_AdbEnv(phone))
    assert not phone.fs.is_file("/sdcard/Download/old.txt")
    with phone.fs.sqlite(content.CALLLOG_DB) as conn:
        assert conn.execute("SELECT count(*) FROM calls").fetchone() == (0,)


# ---- through Debian's adb ----------------------------------------------------------------------------------------


def test_content_through_debian_adb(emulator, adb_server):
    adb_server.wait_for_device(emulator.serial)
    result = adb_server.adb(
        "-s",
        emulator.serial,
        "shell",
        "content query --uri content://contacts/phones/ --projection display_name:number",
    )
    assert (result.returncode, result.stdout.decode(), result.stderr) == (0, SEED_PHONES, b"")
    result = adb_server.adb("-s", emulator.serial, "shell", "content", "query", "--uri", "content://nope")
    assert result.returncode == 0 and result.stderr.decode().startswith("Error while accessing provider:nope\n")
    pulled = adb_server.adb("-s", emulator.serial, "exec-out", "cat", contacts.DB_PATH).stdout
    conn = sqlite3.connect(":memory:")
    conn.deserialize(pulled)
    assert conn.execute("SELECT count(*) FROM raw_contacts").fetchone() == (6,)


def test_gettype_read_call_and_broken_input(phone):
    assert ok(phone, "content gettype --uri content://contacts/phones/") == "Result: vnd.android.cursor.dir/phone\n"
    assert ok(phone, "content gettype --uri content://settings/secure/zen_duration") == (
        "Result: vnd.android.cursor.item/secure\n"
    )
    assert ok(phone, "content gettype --uri content://sms/5") == "Result: vnd.android.cursor.item/sms\n"
    _, err, code = sh(phone, "content read --uri content://settings/system/ringtone_cache")
    assert code == 0 and err.splitlines()[1].startswith("java.io.FileNotFoundException: ")
    _, err, _ = sh(phone, "content insert --uri content://com.android.contacts/data --bind raw_contact_id:s:abc")
    assert err.splitlines()[1] == "java.lang.NullPointerException: Can't insert data with a NULL mimetype"
    _, err, _ = sh(
        phone,
        "content insert --uri content://com.android.contacts/data --bind raw_contact_id:s:abc --bind mimetype:s:x",
    )
    assert err.splitlines()[1] == "java.lang.IllegalArgumentException: raw_contact_id is required"
    phone.fs.write(sms.DB_PATH, b"garbage" * 100)
    out, err, code = sh(phone, "content query --uri content://sms/inbox")
    assert (out, code) == ("", 0)
    assert err.splitlines()[:2] == [
        "Error while accessing provider:sms",
        "android.database.sqlite.SQLiteDatabaseCorruptException: file is not a database (code 26 SQLITE_NOTADB)",
    ]
    assert (
        ok(phone, "content query --uri content://contacts/people/1 --projection name") == "Row: 0 name=Alice Johnson\n"
    )


def test_android_world_contacts_validator_scores_a_contact_saved_in_the_app(phone):
    contacts_validators = pytest.importorskip("android_world.task_evals.common_validators.contacts_validators")
    contacts_utils = pytest.importorskip("android_world.utils.contacts_utils")
    env = _AdbEnv(phone)
    contacts_utils.clear_contacts(env)  # android_world's initialize_task: `pm clear com.android.providers.contacts`
    assert contacts_utils.list_contacts(env) == []
    phone.launch(contacts.PACKAGE)
    phone.tap_node(desc="Create contact")
    for field, text in (("first_name", "Zoe"), ("last_name", "Park"), ("phone", "+1 (415) 555-0123")):
        phone.tap_node(rid=field)
        phone.type_text(text)
    phone.tap_node(rid="menu_save")
    task = SimpleNamespace(params={"name": "Zoe Park", "number": "+14155550123"})
    assert contacts_validators.AddContact._has_contact(task, contacts_utils.list_contacts(env))
    assert contacts_utils.list_contacts(env) == [contacts_utils.Contact("Zoe Park", "14155550123")]


def test_raw_contacts_without_projection_come_in_hash_map_order(phone):
    row = ok(phone, "content query --uri content://com.android.contacts/raw_contacts/1")
    names = re.findall(r"(?:Row: 0 |, )([a-z_0-9]+)=", row)
    assert names[:6] == [
        "phonetic_name",
        "last_time_contacted",
        "custom_ringtone",
        "pinned",
        "account_type",
        "aggregation_mode",
    ]
    assert len(names) == 35 and names[-1] == "phonebook_bucket_alt"
    assert "display_name=Alice Johnson, sort_key=Alice Johnson" in row and "phonebook_bucket=1" in row


def test_update_through_contacts_provider_views(phone):
    ok(
        phone,
        "content update --uri content://com.android.contacts/data --bind data1:s:555-9999"
        " --where \"mimetype='vnd.android.cursor.item/phone_v2' AND raw_contact_id=1\"",
    )
    assert ok(
        phone, "content query --uri content://contacts/phones --projection display_name:number --where person=1"
    ) == ("Row: 0 display_name=Alice Johnson, number=555-9999\n")
    with phone.fs.sqlite(contacts.DB_PATH) as conn:  # phone_lookup follows the number
        assert conn.execute("SELECT min_match FROM phone_lookup WHERE raw_contact_id = 1").fetchone() == ("9999555",)
    ok(phone, "content update --uri content://com.android.contacts/raw_contacts/2 --bind starred:i:1")
    assert ok(phone, "content query --uri content://contacts/people --projection name --where starred=1") == (
        "Row: 0 name=Bob Martinez\nRow: 1 name=Carol Nguyen\n"
    )


def test_data_and_contacts_without_projection_come_in_hash_map_order(phone):
    data = ok(phone, "content query --uri content://com.android.contacts/data/2")
    names = re.findall(r"(?:Row: 0 |, )([a-z_0-9]+)=", data)
    assert len(names) == 84 and names[:3] == ["phonetic_name", "status_res_package", "custom_ringtone"]
    assert "mimetype=vnd.android.cursor.item/phone_v2" in data and "data4=+16505550134" in data
    contact = ok(phone, "content query --uri content://com.android.contacts/contacts/1")
    names = re.findall(r"(?:Row: 0 |, )([a-z_0-9]+)=", contact)
    assert len(names) == 36 and names[0] == "last_time_contacted" and names[-1] == "phonebook_bucket_alt"


def test_call_reaches_the_settings_provider(phone):
    assert ok(phone, "content call --uri content://settings --method GET_system --arg screen_brightness") == (
        "Result: Bundle[{value=102}]\n"
    )
    assert ok(phone, "content call --uri content://settings --method PUT_secure --arg h2_call --extra value:s:7") == (
        "Result: null\n"
    )
    assert ok(phone, "settings get secure h2_call") == "7\n"
    assert ok(phone, "content call --uri content://settings --method GET_global --arg nosuch") == (
        "Result: Bundle[{value=null}]\n"
    )
    out, _, _ = sh(phone, "content call --uri content://settings")
    assert out.endswith("[ERROR] Content provider method not specified.\n")


def test_legacy_people_insert_and_update(phone):
    ok(phone, "content insert --uri content://contacts/people --bind name:s:'Ada Lovelace'")
    ok(phone, "content insert --uri content://contacts/people/7/phones --bind number:s:555-0177 --bind type:i:2")
    ok(phone, "content update --uri content://contacts/people/7 --bind starred:i:1")
    ok(phone, "content update --uri content://contacts/phones --bind number:s:555-0178 --where person=7")
    assert ok(
        phone, "content query --uri content://contacts/phones --projection name:number:type:starred --where person=7"
    ) == ("Row: 0 name=Ada Lovelace, number=555-0178, type=2, starred=1\n")
    ok(phone, "content update --uri content://contacts/people/1 --bind name:s:'Alicia Johnson'")
    assert ok(phone, "content query --uri content://contacts/people/1 --projection display_name") == (
        "Row: 0 display_name=Alicia Johnson\n"
    )
    phone.launch(contacts.PACKAGE)  # the app shows and edits the new name
    phone.tap_node(text="Alicia Johnson")
    phone.tap_node(desc="Edit contact")
    assert phone.find(rid="first_name").text == "Alicia"
