// Package faulttest holds the fault-injection suite: the real AWS and Okta
// clients against their protocol fakes over loopback, the real scheduler,
// bolt and Redis stores and the notifier, driven on a test clock through
// provider hangs, 5xx storms, throttling storms and an outage that ends
// after ten minutes, with grants ending throughout. It has no code of its
// own outside its tests.
package faulttest
