import { cleanup, fireEvent, render, screen, waitFor } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CohortBar, onStudyList } from '../src/cohorts/CohortBar.jsx';
import { chosenCohort, cohortFromAddress, installCohortFilter, withCohort } from '../src/cohorts/filter.js';

const ORIGIN = 'http://viewer.test';
const ME = {
  username: 'ann', platform_admin: false,
  cohorts: [{ id: 3, name: 'Sarcoma', role: 'member' }, { id: 7, name: 'Lung', role: 'admin' }],
};

afterEach(() => {
  cleanup();
  window.sessionStorage.clear();
});

describe('the cohort filter of the study list', () => {
  it('adds cohort=<id> to study searches of our DICOMweb only', () => {
    expect(withCohort('/dicom-web/studies?limit=101&offset=0', '3', ORIGIN)).toBe('/dicom-web/studies?limit=101&offset=0&cohort=3');
    expect(withCohort(`${ORIGIN}/dicom-web/studies`, '3', ORIGIN)).toBe(`${ORIGIN}/dicom-web/studies?cohort=3`);
    // a study's own series and metadata, another host, a search already naming a cohort, no cohort chosen: unchanged
    expect(withCohort('/dicom-web/studies/1.2/series', '3', ORIGIN)).toBe('/dicom-web/studies/1.2/series');
    expect(withCohort('https://elsewhere.test/dicom-web/studies', '3', ORIGIN)).toBe('https://elsewhere.test/dicom-web/studies');
    expect(withCohort('/dicom-web/studies?cohort=9', '3', ORIGIN)).toBe('/dicom-web/studies?cohort=9');
    expect(withCohort('/dicom-web/studies', null, ORIGIN)).toBe('/dicom-web/studies');
  });

  it('narrows the viewer\'s XMLHttpRequest study searches to the cohort chosen in this tab', () => {
    const opened = [];
    class FakeXHR {
      open(method, url) {
        opened.push(url);
      }
    }
    installCohortFilter(FakeXHR, window.sessionStorage);
    installCohortFilter(FakeXHR, window.sessionStorage); // once only
    new FakeXHR().open('GET', '/dicom-web/studies?limit=1');
    cohortFromAddress('?cohort=3', window.sessionStorage);
    new FakeXHR().open('GET', '/dicom-web/studies?limit=1');
    cohortFromAddress('?cohort=../x', window.sessionStorage); // not an id: back to all cohorts
    new FakeXHR().open('GET', '/dicom-web/studies?limit=1');
    expect(opened).toEqual(['/dicom-web/studies?limit=1', '/dicom-web/studies?limit=1&cohort=3', '/dicom-web/studies?limit=1']);
  });

  it('shows each cohort with the user\'s role, and choosing one reloads the list narrowed to it', async () => {
    const reload = vi.fn();
    render(<CohortBar client={{ me: vi.fn(async () => ME) }} reload={reload} />);
    expect(await screen.findByText('Sarcoma (member)')).toBeTruthy();
    expect(screen.getByText('Lung (admin)')).toBeTruthy();
    fireEvent.change(document.querySelector('[data-cy="awesomme-cohort-select"]'), { target: { value: '7' } });
    expect(chosenCohort()).toBe('7');
    expect(reload).toHaveBeenCalledTimes(1);
  });

  it('forgets a chosen cohort the user no longer belongs to (the server would answer 404)', async () => {
    window.sessionStorage.setItem('awesomme.cohort', '99');
    const reload = vi.fn();
    render(<CohortBar client={{ me: vi.fn(async () => ME) }} reload={reload} />);
    await waitFor(() => expect(reload).toHaveBeenCalled());
    expect(chosenCohort()).toBeNull();
  });

  it('belongs to the study list only', () => {
    expect(onStudyList('/viewer/')).toBe(true);
    expect(onStudyList('/viewer')).toBe(true);
    expect(onStudyList('/viewer/awesomme')).toBe(false);
  });
});
