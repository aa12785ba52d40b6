// Below the study list: the user's cohorts with their role in each; choosing one reloads the list narrowed to it.
import React, { useEffect, useRef, useState } from 'react';
import { createClient } from '../api/client.js';
import { chooseCohort, chosenCohort } from './filter.js';

const bar = {
  position: 'fixed', bottom: '8px', left: '50%', transform: 'translateX(-50%)', zIndex: 1000, padding: '3px 8px',
  background: '#0b1a2b', color: '#d8e1ec', border: '1px solid #345', borderRadius: '4px',
  fontSize: '13px', fontFamily: 'sans-serif',
};
const roleName = role => (role === 'admin' ? 'admin' : role === 'member' ? 'member' : role ?? 'no role');

export function CohortBar({ client: givenClient, storage = window.sessionStorage, reload = () => window.location.reload() }) {
  const client = useRef(givenClient ?? createClient()).current;
  const [me, setMe] = useState(null);
  const [failure, setFailure] = useState('');
  const chosen = chosenCohort(storage);

  useEffect(() => {
    client.me().then(
      who => {
        setMe(who);
        // A cohort left since it was chosen (or one never held) would make the server answer 404: forget it.
        if (chosen && !(who.cohorts ?? []).some(cohort => String(cohort.id) === chosen)) {
          chooseCohort(null, storage);
          reload();
        }
      },
      error => setFailure(error.message ?? String(error))
    );
  }, [client]); // eslint-disable-line react-hooks/exhaustive-deps

  if (failure) return <div style={bar} data-cy="awesomme-cohorts">{failure}</div>;
  if (!me) return null;
  const cohorts = me.cohorts ?? [];
  const choose = event => {
    chooseCohort(event.target.value, storage);
    reload();
  };
  return (
    <div style={bar} data-cy="awesomme-cohorts">
      {me.username}
      {me.platform_admin ? ' (platform admin)' : ''} · Cohort{' '}
      <select value={chosen ?? ''} onChange={choose} data-cy="awesomme-cohort-select"
        style={{ background: '#111', color: '#ddd', border: '1px solid #345' }}>
        <option value="">{me.platform_admin ? 'all studies' : 'all my cohorts'}</option>
        {cohorts.map(cohort => (
          <option key={cohort.id} value={String(cohort.id)}>
            {cohort.name} ({roleName(cohort.role)})
          </option>
        ))}
      </select>
    </div>
  );
}

/** Whether the page shows the study list (the viewer's root), where the bar belongs. */
export function onStudyList(pathname = window.location.pathname) {
  return /^\/viewer\/?$/.test(pathname);
}

/** Shows the bar while the study list is shown (the viewer changes pages without reloading). */
export function mountCohortBar({ doc = document, createRoot, pollMs = 1000 } = {}) {
  if (doc.getElementById('awesomme-cohort-bar')) return null;
  const host = doc.createElement('div');
  host.id = 'awesomme-cohort-bar';
  doc.body.appendChild(host);
  let root = null;
  const look = () => {
    if (onStudyList() && !root) {
      root = createRoot(host);
      root.render(<CohortBar />);
    } else if (!onStudyList() && root) {
      root.unmount();
      root = null;
    }
  };
  look();
  return setInterval(look, pollMs);
}
