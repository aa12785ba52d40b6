// OHIF 3.13 shares no React with runtime extensions: it renders this small class component (React 18 elements are
// recognised across copies by their global symbol) and the panel lives in its own root inside it.
import React from 'react';
import { createRoot } from 'react-dom/client';

export function island(Component, props) {
  return class Island extends React.Component {
    constructor(islandProps) {
      super(islandProps);
      this.element = React.createRef();
    }

    componentDidMount() {
      this.root = createRoot(this.element.current);
      this.root.render(<Component {...props} />);
    }

    componentWillUnmount() {
      const root = this.root;
      this.root = null;
      if (root) setTimeout(() => root.unmount(), 0); // not while the host is rendering
    }

    render() {
      return <div ref={this.element} style={{ height: '100%', overflow: 'auto' }} />;
    }
  };
}
