package images

// beginCopy marks a copy into the store as under way. The returned
// function ends it; when the copy failed and no other copy runs, it
// deletes the layers the copy committed before failing, so that a failed
// or cancelled pull leaves the store as it found it. (Layers of a copy
// still running elsewhere may look just as unused, so nothing is
// deleted while another copy runs; a later pull reuses such layers.)
func (s *Store) beginCopy() (end func(failed bool)) {
	s.copyMu.Lock()
	s.copies++
	// Only a copy that started alone knows which layers it added.
	var before map[string]bool
	if s.copies == 1 {
		if ls, err := s.store.Layers(); err == nil {
			before = map[string]bool{}
			for _, l := range ls {
				before[l.ID] = true
			}
		}
	}
	s.copyMu.Unlock()
	return func(failed bool) {
		s.copyMu.Lock()
		defer s.copyMu.Unlock()
		s.copies--
		if failed && s.copies == 0 && before != nil {
			s.dropUnusedLayers(before)
		}
	}
}

// dropUnusedLayers deletes layers that are not in keep and that no image
// or container uses, children first.
func (s *Store) dropUnusedLayers(keep map[string]bool) {
	ls, err := s.store.Layers()
	if err != nil {
		return
	}
	used := map[string]bool{}
	parent := map[string]string{}
	for _, l := range ls {
		parent[l.ID] = l.Parent
	}
	mark := func(id string) {
		for ; id != "" && !used[id]; id = parent[id] {
			used[id] = true
		}
	}
	if imgs, err := s.store.Images(); err == nil {
		for _, img := range imgs {
			mark(img.TopLayer)
			for _, id := range img.MappedTopLayers {
				mark(id)
			}
		}
	}
	if cs, err := s.store.Containers(); err == nil {
		for _, c := range cs {
			mark(c.LayerID)
		}
	}
	// Delete new, unused layers, leaves first: repeat until none goes.
	for changed := true; changed; {
		changed = false
		ls, err := s.store.Layers()
		if err != nil {
			return
		}
		children := map[string]int{}
		for _, l := range ls {
			children[l.Parent]++
		}
		for _, l := range ls {
			if keep[l.ID] || used[l.ID] || children[l.ID] > 0 {
				continue
			}
			if err := s.store.DeleteLayer(l.ID); err == nil {
				changed = true
			}
		}
	}
}
