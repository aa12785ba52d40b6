// The AWESOMME extension: our Segmentation panel, loaded by the prebuilt viewer from /viewer-plugins/.
import { EXTENSION_ID, PANEL_NAME, VERSION } from './ids.js';
import { island } from './island.jsx';
import { SegmentationPanel } from './panels/SegmentationPanel.jsx';

const extension = {
  id: EXTENSION_ID,
  version: VERSION,
  // Runs once when the viewer registers the extension: nothing to set up, the panel reads the services it is given.
  preRegistration() {},
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
