from switchboard.pipeline.wer import corpus_wer, normalise, number_to_words, wer


def test_numbers_spelt_out():
    assert number_to_words(411) == "four hundred eleven"
    assert normalise("Press 1, or 2 for P.M.") == "press one or two for pm"
    assert normalise("1 for A.M, or") == normalise("one for AM. or")
    assert normalise("the 3rd of May") == "the third of may"


def test_wer_ignores_surface_form():
    assert wer("press 1 to send", "Press one to send.") == 0.0
    assert wer("a b c d", "a x c d") == 0.25


def test_corpus_wer_weights_by_length():
    assert corpus_wer(["a b c d", "e f"], ["a b c d", "x y"]) == 2 / 6
