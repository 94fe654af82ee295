// The replication console's entry: one Preact app in #app. Everything it shows comes from the
// API and is rendered as text (Preact escapes it); nothing is inlined (see the CSP).
import { render } from 'preact';
import { App } from './app';

render(<App />, document.getElementById('app')!);
