import { describe, expect, it } from 'vitest';
import extension from '../src/extension.js';
import { EXTENSION_ID, PANEL_ID } from '../src/ids.js';

describe('the extension', () => {
  it('has the id the mode\'s panel reference uses, and a preRegistration', () => {
    expect(extension.id).toBe(EXTENSION_ID);
    expect(PANEL_ID).toBe(`${EXTENSION_ID}.panelModule.segmentation`);
    expect(typeof extension.preRegistration).toBe('function');
  });

  it('offers one panel, named segmentation, as a component', () => {
    const panels = extension.getPanelModule({ servicesManager: { services: {} }, commandsManager: {} });
    expect(panels).toHaveLength(1);
    expect(panels[0].name).toBe('segmentation');
    expect(typeof panels[0].component).toBe('function');
  });
});
