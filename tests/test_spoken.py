"""Spoken forms to slot values, as Whisper writes callers' answers."""

import pytest
from switchboard.pipeline.spoken import (
    digit_runs,
    expects_digits,
    find_slots,
    normalise,
    read_confirmation,
    say_digits,
)


@pytest.mark.parametrize("text,runs", [
    ("one seven three four", ["1734"]),
    ("1, 7, 3, 4", ["1734"]),
    ("1-7-3-4.", ["1734"]),
    ("It's 1734.", ["1734"]),
    ("One, seven, three, four.", ["1734"]),
    ("double five", ["55"]),
    ("Double 5, 2, 7.", ["5527"]),
    ("triple zero one", ["0001"]),
    ("seven oh four", ["704"]),
    ("Oh, it's 1734.", ["1734"]),  # "oh" before words is not a zero
    ("nineteen oh five", ["1905"]),
    ("seventeen thirty-four", ["1734"]),
    ("twenty one fifty", ["2150"]),
    ("four twenty zero one", ["42001"]),  # "twenty zero" is 2, 0: no "twenty-zero"
    ("two hundred and five", ["205"]),
    ("seven two hundred", ["7200"]),
    ("four thousand five hundred", ["4500"]),
    ("33489 17502", ["3348917502"]),
    ("(977) 625-2661", ["9776252661"]),
    ("my zip is 75227 and my phone is 977 625 2661", ["75227", "9776252661"]),
    ("one, uh, seven, three, four", ["1734"]),
    ("I have no idea", []),
    ("one moment please", ["1"]),
])
def test_digit_runs(text, runs):
    assert digit_runs(text) == runs


@pytest.mark.parametrize("slot,text,value", [
    # order IDs: ABCD's are 10 digits (abcd_sample.json)
    ("order_id", "Order ID: 3348917502", "3348917502"),
    ("order_id", "it's three three four eight nine one seven five oh two", "3348917502"),
    ("order_id", "3 3 4 8 9, 1 7 5 0 2.", "3348917502"),
    ("order_id", "Sure. The order number is 33489-17502.", "3348917502"),
    ("order_id", "double three four eight nine one seven five zero two", "3348917502"),
    ("order_id", "I think it's 334891", None),  # too short: ask again, don't guess
    # zip codes
    ("zip_code", "75227", "75227"),
    ("zip_code", "My zip code is seven five two two seven.", "75227"),
    ("zip_code", "seven five double two seven", "75227"),
    ("zip_code", "It's 94107-1234.", "94107"),
    ("zip_code", "nine oh two one oh", "90210"),
    # phones: ABCD's format "(977) 625-2661"
    ("phone", "(977) 625-2661", "(977) 625-2661"),
    ("phone", "977-625-2661.", "(977) 625-2661"),
    ("phone", "nine seven seven, six two five, two six six one", "(977) 625-2661"),
    ("phone", "It's 1 977 625 2661", "(977) 625-2661"),
    ("phone", "2 977 625 2661", None),  # 11 digits without the country code: ask again
    ("phone", "nine seven seven six two five twenty six sixty one", "(977) 625-2661"),
    ("phone", "555 1234", None),
    # emails
    ("email", "john dot smith at gmail dot com", "john.smith@gmail.com"),
    ("email", "John dot Smith at Gmail dot com.", "john.smith@gmail.com"),
    ("email", "cminh730@email.com", "cminh730@email.com"),
    ("email", "My email is cminh730@email.com.", "cminh730@email.com"),
    ("email", "It's c minh seven three zero at email dot com", "cminh730@email.com"),
    ("email", "my email address is aphoenix939 at email.com", "aphoenix939@email.com"),
    ("email", "j underscore smith at yahoo dot co dot uk please", "j_smith@yahoo.co.uk"),
    ("email", "J-O-H-N dot S-M-I-T-H at gmail.com", "john.smith@gmail.com"),
    ("email", "Sure, my email is john.smith@gmail.com.", "john.smith@gmail.com"),
    ("email", "I don't know it", None),
    # usernames: ABCD's are initial + last name + 3 digits
    ("username", "Username: cminh730", "cminh730"),
    ("username", "it's c minh seven three zero", "cminh730"),
    ("username", "My username is aphoenix939.", "aphoenix939"),
    ("username", "C. Minh 730", "cminh730"),
    ("username", "C-M-I-N-H 7-3-0.", "cminh730"),
    ("username", "jdemo", "jdemo"),
    ("username", "I got the wrong size.", None),
    ("username", "cminh730@email.com", None),
    ("username", "no worries", None),
    ("username", "great", None),
    # account IDs: letters and digits
    ("account_id", "My account ID is QJCTZ9YTGW.", "QJCTZ9YTGW"),
    ("account_id", "q j c t z nine y t g w", "QJCTZ9YTGW"),
    ("account_id", "Q as in queen, J, C, T, Z, 9, Y, T, G, W.", "QJCTZ9YTGW"),
    ("account_id", "A B C D E, I think", "ABCDE"),  # the pronoun is not a letter
    # ABCD's IDs are 10 characters: preferred to a longer run in the same answer.
    ("account_id", "not AB12CD34EF56 but QJCTZ9YTGW", "QJCTZ9YTGW"),
    ("account_id", "quebec juliet charlie tango zulu nine yankee tango golf whiskey",
     "QJCTZ9YTGW"),
    ("account_id", "I don't know it", None),
    ("account_id", "bravo double x seven seven one", "BXX771"),
    ("account_id", "It's Q-J-C-T-Z-9-Y-T-G-W.", "QJCTZ9YTGW"),
    # names
    ("customer_name", "Crystal Minh", "Crystal Minh"),
    ("customer_name", "my name is alessandro phoenix.", "Alessandro Phoenix"),
    ("customer_name", "Yeah, it's Joyce Wu, thanks.", "Joyce Wu"),
    ("customer_name", "This is Sanya Afzal speaking", "Sanya Afzal"),
    ("customer_name", "Yes.", None),
    ("customer_name", "my name is on the account", None),
    ("customer_name", "Actually, I'm not sure", None),
    ("customer_name", "Hi, Crystal Minh here", "Crystal Minh"),
    # membership levels
    ("membership_level", "I'm a bronze", "bronze"),
    ("membership_level", "Gold member.", "gold"),
    ("membership_level", "I think I'm silver level", "silver"),
    ("membership_level", "I'm not a member, just a guest.", "guest"),
    ("membership_level", "I don't have a membership", "guest"),
    ("membership_level", "no idea", None),
    # amounts
    ("amount", "$94", "94"),
    ("amount", "It was 94 dollars.", "94"),
    ("amount", "ninety four dollars", "94"),
    ("amount", "about a hundred and twenty bucks", "120"),
    ("amount", "$12.5", "12.50"),
    ("amount", "forty dollars and fifty cents", "40.50"),
    # enumerables
    ("shipping_option", "It hasn't shipped yet.", "order received"),
    ("shipping_option", "I think it's on its way", "in transit"),
    ("shipping_option", "It says out for delivery.", "out for delivery"),
    ("shipping_option", "It arrived yesterday", "delivered"),
    ("payment_method", "I paid with PayPal", "paypal"),
    ("new_payment_method", "switch it to my debit card", "debit card"),
    ("refund_target", "a gift card please", "gift card"),
    ("return_method", "I'll drop it off", "drop off center"),
    ("product", "the Calvin Klein jeans", "calvin klein jeans"),
    # addresses
    ("street_address", "6821 1st Ave.", "6821 1st Ave"),
    ("street_address", "six eight two one first avenue", "6821 First Avenue"),
    ("new_street_address", "It's 7226 Florishim Drive", "7226 Florishim Drive"),
])
def test_normalise(slot, text, value):
    got = normalise(slot, text)
    assert (got.value if got else None) == value


def test_identifiers_are_read_back_as_words():
    order = normalise("order_id", "3348917502")
    assert order.identifier
    assert order.spoken == "three three four eight nine, one seven five zero two"
    phone = normalise("phone", "(977) 625-2661")
    assert phone.spoken == "nine seven seven, six two five, two six six one"
    email = normalise("email", "cminh730@email.com")
    assert email.spoken == "cminh seven three zero at email dot com"
    assert normalise("account_id", "QJCTZ9YTGW").spoken == "Q J C T Z, nine Y T G W"
    name = normalise("customer_name", "crystal minh")
    assert not name.identifier and name.spoken == "Crystal Minh"
    assert say_digits("0704") == "zero seven zero four"


def test_unknown_slot_is_an_error():
    with pytest.raises(KeyError):
        normalise("shoe_size", "nine")


@pytest.mark.parametrize("text,kind,rest", [
    ("Yes.", "yes", ""),
    ("yeah that's right", "yes", ""),
    ("Correct.", "yes", ""),
    ("That's right.", "yes", ""),
    ("that's correct", "yes", ""),
    ("Uh, yes.", "yes", ""),
    ("great", "yes", ""),
    ("Okay.", "yes", ""),
    ("No.", "no", ""),
    ("No, no, no. It's 94107.", "correction", "94107"),
    ("Um, no.", "no", ""),
    ("No, that's not it.", "no", ""),
    ("Nope", "no", ""),
    ("No, it's 1735.", "correction", "1735"),
    ("no it's one seven three five", "correction", "one seven three five"),
    ("No, the last digit is a five", "correction", "the last digit is a five"),
    ("Actually it's john dot smyth at gmail dot com",
     "correction", "john dot smyth at gmail dot com"),
    ("Not 1734, 1735.", "correction", "1735"),
    ("It's 1735, not 1734.", "correction", "1735"),
    ("Sorry, I meant silver", "correction", "silver"),
    ("What do you mean?", "unclear", "What do you mean?"),
    ("no worries", "unclear", "no worries"),
    ("No problem.", "unclear", "No problem."),
])
def test_read_confirmation(text, kind, rest):
    c = read_confirmation(text)
    assert (c.kind, c.rest) == (kind, rest)


def test_a_correction_renormalises():
    c = read_confirmation("No, it's nine seven seven, six two five, two six six two.")
    assert c.kind == "correction"
    assert normalise("phone", c.rest).value == "(977) 625-2662"


@pytest.mark.parametrize("text,expected", [
    ("Order ID: 3348917502", {"order_id": "3348917502"}),
    ("cminh730@email.com", {"email": "cminh730@email.com"}),
    ("Username: cminh730", {"username": "cminh730"}),
    ("my zip is 75227 and my phone is 977 625 2661",
     {"zip_code": "75227", "phone": "(977) 625-2661"}),
    ("Hi, my name is Crystal Minh and I need to return an item",
     {"customer_name": "Crystal Minh"}),
    ("I want to return the jeans I bought", {}),
    ("This is ridiculous, my order never came", {}),
    ("Hi, this is Joyce Wu calling about my bill", {"customer_name": "Joyce Wu"}),
])
def test_find_slots(text, expected):
    assert {k: v.value for k, v in find_slots(text).items()} == expected


def test_which_questions_wait_for_a_number():
    """The ASR prompts Whisper for digits only when every value asked for is a number."""
    for slot in ("phone", "zip_code", "order_id", "pin_number", "new_phone"):
        assert expects_digits(slot), slot
    for slot in ("account_id", "customer_name|account_id", "email", "username", "", "|"):
        assert not expects_digits(slot), slot
    assert expects_digits("order_id|phone")
