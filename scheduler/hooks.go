package scheduler

// Hooks are optional callbacks that let an observer (metrics, health
// checks) follow the scheduler without the scheduler knowing about it.
// They are called synchronously and must return quickly.
type Hooks struct {
	// Loop is called at each turn of Run's loop: after each drain, which
	// happens at least every Sweep even when nothing is due. A liveness
	// check can fail when it stops being called.
	Loop func()
	// Lock is called when this replica wins the lock of job (held true)
	// at a run, fails to win it because another replica holds it or the
	// store is unreachable, loses it while running, or releases it (held
	// false). A scheduled run keeps the lock until shortly before the next
	// tick, so held stays true between the runs this replica wins.
	Lock func(job string, held bool)
}

func (s *Scheduler) loopTurned() {
	if f := s.opts.Hooks.Loop; f != nil {
		f()
	}
}

func (s *Scheduler) lockHeld(job string, held bool) {
	if f := s.opts.Hooks.Lock; f != nil {
		f(job, held)
	}
}
