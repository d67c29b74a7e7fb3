package handlers

// RefusalText is the text a person is shown for a refusal err, "" when err
// is no refusal (for tests of the wording).
func RefusalText(err error) string {
	s, _ := shownText(err)
	return s
}
