"""Numbers keyed on the keypad: digits gather until # or the number's length, * clears."""

from switchboard.pipeline.keypad import Keypad


def press(keypad: Keypad, keys: str, slot: str) -> list[str | None]:
    return [keypad.press(k, slot) for k in keys]


def test_a_number_of_known_length_is_taken_at_its_last_digit():
    keypad = Keypad()
    assert press(keypad, "9410", "zip_code") == [None] * 4
    assert keypad.press("7", "zip_code") == "94107"
    assert keypad.keys == ""
    assert press(keypad, "555010010", "phone")[-1] is None
    assert keypad.press("1", "phone") == "5550100101"


def test_pound_ends_an_entry_of_any_length_and_star_starts_again():
    keypad = Keypad()
    assert press(keypad, "12", "pin_number") == [None, None]
    assert keypad.press("*", "pin_number") is None and keypad.keys == ""
    assert press(keypad, "4321#", "pin_number") == [None, None, None, None, "4321"]
    assert keypad.press("#", "pin_number") is None  # nothing keyed: nothing to take
    # A caller who presses # early gets what they keyed: the dialogue asks again.
    assert press(keypad, "941#", "zip_code")[-1] == "941"


def test_keys_that_are_not_digits_are_ignored():
    keypad = Keypad()
    assert press(keypad, "1A2BCD", "pin_number") == [None] * 6
    assert keypad.take() == "12" and keypad.take() is None
