// Package hatest holds the high-availability acceptance tests (issue 9):
// two real `accessbot run` replicas as subprocesses on a private Redis with
// AOF, against the Slack Socket Mode fake and the Identity Store fake on
// loopback, while one replica is killed with SIGKILL over and over, or
// while Redis is restarted. The package has no code of its own; the tests
// are in its _test.go files.
//
// ACCESSBOT_HA_SOAK=5m makes the kill test a longer soak;
// ACCESSBOT_HA_SEED=N replays a run's kill schedule.
package hatest
