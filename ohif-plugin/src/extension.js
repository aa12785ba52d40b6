// The AWESOMME extension: our Segmentation panel, loaded by the prebuilt viewer from /viewer-plugins/.
import { EXTENSION_ID, PANEL_NAME, VERSION } from './ids.js';
import { createRoot } from 'react-dom/client';
import { mountCohortBar } from './cohorts/CohortBar.jsx';
import { cohortFromAddress, installCohortFilter } from './cohorts/filter.js';
import { island } from './island.jsx';
import { SegmentationPanel } from './panels/SegmentationPanel.jsx';

const extension = {
  id: EXTENSION_ID,
  version: VERSION,
  // Runs once when the viewer starts (the study list included): the cohort chosen for the list narrows its searches,
  // and the cohort bar (the user's cohorts and role in each) shows above the list.
  preRegistration() {
    if (typeof window === 'undefined' || typeof document === 'undefined') return;
    cohortFromAddress();
    installCohortFilter();
    mountCohortBar({ createRoot });
  },
  getPanelModule({ servicesManager, commandsManager, extensionManager }) {
    return [
      {
        name: PANEL_NAME,
        iconName: 'tab-segmentation',
        iconLabel: 'AWESOMME',
        label: 'AWESOMME Segmentation',
        component: island(SegmentationPanel, { servicesManager, commandsManager, extensionManager }),
      },
    ];
  },
};

export default extension;
